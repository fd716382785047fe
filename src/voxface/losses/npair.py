"""N-pair loss (Sohn, "Improved Deep Metric Learning with Multi-class N-pair Loss Objective", NeurIPS 2016)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class NPairLoss(nn.Module):
    """Anchors against their positives, the batch's other positives as negatives, on inner products::

        L = 1/N sum_i log(1 + sum_{j != i} exp(a_i . p_j - a_i . p_i))  +  lambda/4 (mean_i |a_i|^2 + mean_i |p_i|^2)

    The first term is the cross-entropy of the logits ``a @ p.T`` with pair i's positive at column i (Sohn's Eq. 4
    with one pair per class); the second is Sohn's L2 penalty on the embeddings, which keeps unnormalised inner
    products from growing without bound (weight ``norm_weight`` = lambda; TensorFlow's ``npairs_loss`` uses
    0.002 with the same 1/4). Pairs are assumed to be of distinct classes (identity-unique batches).

    Example:
        >>> loss = NPairLoss(norm_weight=0.0)
        >>> eye = 5 * torch.eye(4)
        >>> float(loss(eye, eye)) < float(loss(eye, eye.roll(1, 0)))
        True
    """

    def __init__(self, norm_weight: float = 0.002) -> None:
        super().__init__()
        if norm_weight < 0:
            raise ValueError(f"norm_weight must be non-negative, got {norm_weight}")
        self.norm_weight = norm_weight

    def forward(self, anchor: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
        """(N, D) anchors, (N, D) positives (pair i: row i of each) -> the 0-d loss."""
        logits = anchor @ positive.T
        loss = F.cross_entropy(logits, torch.arange(len(anchor), device=anchor.device))
        penalty = anchor.pow(2).sum(dim=1).mean() + positive.pow(2).sum(dim=1).mean()
        return loss + 0.25 * self.norm_weight * penalty
