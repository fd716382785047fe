"""The total objective, paper Eq. (8) and Algorithm 1: ``L = w_C L_C + alpha L_OT + beta L_RKD``."""

from __future__ import annotations

import torch
from torch import nn

from voxface.losses.contrastive import ContrastiveLoss
from voxface.losses.distillation import RelationalDistillationLoss
from voxface.losses.optimal_transport import OptimalTransportLoss


class AlignmentLoss(nn.Module):
    """Every term computed and returned, so each can be logged; a weight of 0 skips nothing but the sum.

    ``contrastive_weight`` is 1 in the paper; 0 gives Table 3's "OT only" row. Algorithm 1 uses
    alpha = beta = 1; Table 3 ablates alpha; §6.2.2 switches RKD off (beta = 0).
    """

    def __init__(self, contrastive_weight: float = 1.0, ot_weight: float = 1.0, rkd_weight: float = 1.0,
                 temperature: float = 0.07, learnable_temperature: bool = False, ot_solver: str = "emd",
                 sinkhorn_reg: float = 0.05, rkd_mode: str = "cosine", ot_pairs: str = "discriminative") -> None:
        super().__init__()
        self.weights = {"contrastive": contrastive_weight, "ot": ot_weight, "rkd": rkd_weight}
        self.contrastive = ContrastiveLoss(temperature, learnable_temperature)
        self.ot = OptimalTransportLoss(ot_solver, sinkhorn_reg, pairs=ot_pairs)
        self.rkd = RelationalDistillationLoss(rkd_mode)

    def forward(self, face: torch.Tensor, voice: torch.Tensor, teacher: torch.Tensor) -> dict[str, torch.Tensor]:
        """face: mapped face embeddings F; voice: V; teacher: the teacher's embeddings T (all (N, ...))."""
        if len(face) != len(voice) or len(face) != len(teacher):
            raise ValueError(f"batch sizes differ: F {len(face)}, V {len(voice)}, T {len(teacher)}")
        if len(face) < 2:
            raise ValueError("the alignment losses need at least 2 pairs in a batch")
        terms = {"contrastive": self.contrastive(face, voice), "ot": self.ot(face, voice),
                 "rkd": self.rkd(face, teacher)}
        total = sum(self.weights[name] * value for name, value in terms.items())
        return {"loss": total, **terms,
                "ot_kept_fraction": torch.tensor(self.ot.last_kept_fraction),
                "temperature": torch.tensor(self.contrastive.temperature)}
