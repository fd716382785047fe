"""Losses: one small module per concern."""

from voxface.losses.arcface import ArcFaceHead

__all__ = ["ArcFaceHead"]
