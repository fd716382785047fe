"""FeatureMapping: the MLP that maps the face teacher's embedding to the audio embedding size (paper §3)."""

from __future__ import annotations

import torch
from torch import nn


class FeatureMapping(nn.Module):
    """``F = FeatureMapping(T)``: Linear -> norm -> activation -> dropout per hidden layer, then Linear.

    Arguments:
        in_dim: the teacher's embedding size (512 for ArcFace IResNets).
        out_dim: the audio embedding size (192 for ECAPA-TDNN).
        hidden: hidden layer sizes; ``()`` makes it one linear map.
        norm: "batch", "layer" or "none".

    Example:
        >>> FeatureMapping(512, 192, hidden=(256,))(torch.randn(4, 512)).shape
        torch.Size([4, 192])
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: tuple[int, ...] = (512,), norm: str = "batch",
                 dropout: float = 0.0, activation: str = "relu") -> None:
        super().__init__()
        if norm not in ("batch", "layer", "none"):
            raise ValueError(f"mapping norm must be 'batch', 'layer' or 'none', got {norm!r}")
        if activation not in ("relu", "gelu"):
            raise ValueError(f"mapping activation must be 'relu' or 'gelu', got {activation!r}")
        layers: list[nn.Module] = []
        size = in_dim
        for width in hidden:
            layers.append(nn.Linear(size, width))
            if norm == "batch":
                layers.append(nn.BatchNorm1d(width))
            elif norm == "layer":
                layers.append(nn.LayerNorm(width))
            layers.append(nn.ReLU() if activation == "relu" else nn.GELU())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            size = width
        layers.append(nn.Linear(size, out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, teacher: torch.Tensor) -> torch.Tensor:
        return self.net(teacher)


def modality_heads(face_dim: int, voice_dim: int, size: int, hidden: tuple[int, ...],
                   dropout: float) -> tuple[FeatureMapping, FeatureMapping]:
    """A face and a voice MLP (no normalisation layers) into one ``size``-wide shared space: the two-tower heads of
    the pair methods (PINs, FV-CME, LAFV) on their encoders' outputs."""
    return (FeatureMapping(face_dim, size, hidden, "none", dropout),
            FeatureMapping(voice_dim, size, hidden, "none", dropout))


def branch_block(size_in: int, size_out: int, dropout: float) -> nn.Sequential:
    """One FOP-style branch layer (FOP and MSM): Linear -> BatchNorm -> ReLU -> Dropout, (B, size_in) -> (B, size_out).

    >>> branch_block(8, 4, 0.5)(torch.randn(3, 8)).shape
    torch.Size([3, 4])
    """
    return nn.Sequential(nn.Linear(size_in, size_out), nn.BatchNorm1d(size_out), nn.ReLU(), nn.Dropout(dropout))
