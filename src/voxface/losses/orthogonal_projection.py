"""Orthogonal projection loss (OPL; Ranasinghe et al., "Orthogonal Projection Loss", ICCV 2021), in the form FOP
(Saeed et al., ICASSP 2022) and SBNet (Saeed et al., ICASSP 2023) train with (msaadsaeed/FOP ``main.py``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class OrthogonalProjectionLoss(nn.Module):
    """Pull same-label embeddings together, push different-label ones to orthogonal, on cosine similarities.

    With ``s_ij = <x_i/|x_i|, x_j/|x_j|>``, the same-label pairs ``P = {(i, j): y_i = y_j, i != j}`` and the
    different-label pairs ``N = {(i, j): y_i != y_j}`` (both ordered):

        ``L = (1 - sum_P s_ij / (|P| + eps)) + gamma * sum_N |s_ij| / (|N| + eps)``,  eps = 1e-6

    (the reference's gamma is 0.7 and its eps 1e-6; a batch without same-label pairs has a zero pull term).
    ``last_positive_mean`` / ``last_negative_mean`` keep the two means of the last call, for logging.

    Arguments: ``features`` (B, D), ``labels`` (B,) int. Returns a 0-d tensor.

    Example:
        >>> loss = OrthogonalProjectionLoss(gamma=0.7)
        >>> x = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]])
        >>> round(float(loss(x, torch.tensor([0, 0, 1]))), 4)  # same-label cosine 1, the others orthogonal
        0.0
    """

    def __init__(self, gamma: float = 0.7, eps: float = 1e-6) -> None:
        super().__init__()
        self.gamma, self.eps = gamma, eps
        self.last_positive_mean = self.last_negative_mean = 0.0

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        unit = F.normalize(features, dim=1)
        similarity = unit @ unit.T
        same = labels[:, None] == labels[None, :]
        positive = (same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)).to(similarity.dtype)
        negative = (~same).to(similarity.dtype)
        positive_mean = (positive * similarity).sum() / (positive.sum() + self.eps)
        negative_mean = (negative * similarity).abs().sum() / (negative.sum() + self.eps)
        self.last_positive_mean, self.last_negative_mean = positive_mean.item(), negative_mean.item()
        return (1.0 - positive_mean) + self.gamma * negative_mean
