"""Relational knowledge distillation of the teacher's geometry, paper Eq. (9) (Park et al. 2019)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from voxface.losses.contrastive import cosine_matrix


class RelationalDistillationLoss(nn.Module):
    """Keep the mapped faces' pairwise relations equal to the teacher's.

    ``mode="cosine"`` (the paper, Eq. 9: l_delta is the mean squared error, Psi_D the cosine similarity):
    ``mean_ij (cos(F_i, F_j) - cos(T_i, T_j))^2``. ``mode="distance"`` is Park et al.'s RKD-D:
    pairwise Euclidean distances, each side divided by its mean, compared with the Huber loss. The
    teacher side is detached either way.

    Example:
        >>> rkd = RelationalDistillationLoss()
        >>> teacher = torch.randn(6, 32)
        >>> float(rkd(teacher * 3.0, teacher)) < 1e-10
        True
    """

    def __init__(self, mode: str = "cosine") -> None:
        super().__init__()
        if mode not in ("cosine", "distance"):
            raise ValueError(f"RKD mode must be 'cosine' or 'distance', got {mode!r}")
        self.mode = mode

    def forward(self, mapped: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        teacher = teacher.detach()
        if self.mode == "cosine":
            return (cosine_matrix(mapped, mapped) - cosine_matrix(teacher, teacher)).pow(2).mean()
        student_d, teacher_d = torch.cdist(mapped, mapped), torch.cdist(teacher, teacher)
        off = ~torch.eye(len(mapped), dtype=torch.bool, device=mapped.device)
        student_d = student_d / student_d[off].mean().clamp(min=1e-12)
        teacher_d = teacher_d / teacher_d[off].mean().clamp(min=1e-12)
        return F.smooth_l1_loss(student_d[off], teacher_d[off])
