"""The triplet network's ratio loss (Hoffer & Ailon, "Deep Metric Learning Using Triplet Network", SIMBAD 2015)."""

from __future__ import annotations

import torch
from torch import nn


class RatioTripletLoss(nn.Module):
    """A softmax over the anchor's two Euclidean distances, pushed to (0, 1)::

        d+ = |a - p|_2,  d- = |a - n|_2,  (s+, s-) = softmax(d+, d-)
        L = mean over triplets of |(s+, s- - 1)|_2^2  =  mean 2 s+^2,  s+ = sigmoid(d+ - d-)

    It is zero only as d- - d+ grows without bound, and bounded by 2 (no margin to set). ``eps`` keeps the square
    root differentiable when an anchor equals its positive.

    Example:
        >>> loss = RatioTripletLoss()
        >>> a = torch.zeros(2, 3)
        >>> float(loss(a, a + 0.1, a + 5.0)) < float(loss(a, a + 5.0, a + 0.1))
        True
    """

    def __init__(self, eps: float = 1e-12) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
        """(N, D) anchors, positives and negatives (triplet i: row i of each) -> the 0-d loss."""
        near = ((anchor - positive).pow(2).sum(dim=1) + self.eps).sqrt()
        far = ((anchor - negative).pow(2).sum(dim=1) + self.eps).sqrt()
        soft = torch.softmax(torch.stack([near, far], dim=1), dim=1)
        target = torch.tensor([0.0, 1.0], device=soft.device, dtype=soft.dtype)
        return (soft - target).pow(2).sum(dim=1).mean()
