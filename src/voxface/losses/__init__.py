"""Losses, one small module per concern: contrastive (Eq. 1-4), optimal transport (Eq. 5-7),
relational distillation (Eq. 9), their sum (Eq. 8), and the ArcFace head for the face teacher."""

from voxface.losses.arcface import ArcFaceHead
from voxface.losses.contrastive import ContrastiveLoss, cosine_matrix
from voxface.losses.distillation import RelationalDistillationLoss
from voxface.losses.optimal_transport import OptimalTransportLoss, discriminative_pairs

__all__ = ["ArcFaceHead", "ContrastiveLoss", "OptimalTransportLoss", "RelationalDistillationLoss",
           "cosine_matrix", "discriminative_pairs"]
