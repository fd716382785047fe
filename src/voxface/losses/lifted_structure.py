"""Lifted structured embedding loss: Song, Xiang, Jegelka & Savarese, "Deep Metric Learning via Lifted Structured
Feature Embedding", CVPR 2016, Eq. (4).

For L2-normalised embeddings x (N, D) with labels y, distances ``D_ij = ||x_i - x_j||``, positive pairs P (i != j,
same label) and negatives N_i of each i (different label):

    J_ij = log( sum_{k in N_i} exp(m - D_ik) + sum_{l in N_j} exp(m - D_jl) ) + D_ij - m_p
    L    = 1 / (2 |P|) * sum_{(i, j) in P} max(0, J_ij)^2           (P over ordered pairs, each pair twice)

This is pytorch-metric-learning's ``LiftedStructureLoss`` (same margins m = ``neg_margin``, m_p = ``pos_margin``,
normalisation, reduction), computed on the N x N matrix instead of on every (positive pair, negative pair)
combination: the same value (tests/test_peers_clusters.py compares the two), in O(N^2) rather than O(N^3) memory and
time, which is what keeps a 64-embedding batch under a millisecond on a CPU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LiftedStructureLoss(nn.Module):
    """Song et al. 2016's lifted structured loss on (N, D) embeddings and (N,) int labels -> a 0-d tensor.

    A batch with no positive pair gives 0 (connected to the graph). An anchor with no negative contributes no log
    term (pytorch-metric-learning's convention).

    Example:
        >>> loss = LiftedStructureLoss(neg_margin=1.0)
        >>> x = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
        >>> round(float(loss(x, torch.tensor([0, 0, 1]))), 4)
        0.0927
    """

    def __init__(self, neg_margin: float = 1.0, pos_margin: float = 0.0) -> None:
        super().__init__()
        self.neg_margin, self.pos_margin = neg_margin, pos_margin

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        x = F.normalize(embeddings, dim=1)
        distance = torch.cdist(x, x)  # cdist: a zero distance (two equal embeddings) has a zero, not a NaN, gradient
        same = labels[:, None] == labels[None, :]
        eye = torch.eye(len(x), dtype=torch.bool, device=x.device)
        positive, negative = same & ~eye, ~same
        if not positive.any():
            return embeddings.sum() * 0.0
        # log sum_{k in N_i} exp(m - D_ik) per anchor; -inf where i has no negative
        per_anchor = torch.logsumexp((self.neg_margin - distance).masked_fill(~negative, float("-inf")), dim=1)
        i, j = positive.nonzero(as_tuple=True)
        both = torch.logaddexp(per_anchor[i], per_anchor[j])
        both = torch.where(torch.isinf(both), torch.zeros_like(both), both)  # neither has a negative: no log term
        value = torch.relu(both + distance[i, j] - self.pos_margin) ** 2 / 2
        return value.mean()
