"""Additive angular margin (ArcFace, Deng et al. 2019) classification loss, for pretraining a face teacher."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class ArcFaceHead(nn.Module):
    """Cross-entropy on ``scale * cos(theta + margin)`` for the true class, ``scale * cos(theta)`` otherwise.

    Example:
        >>> head = ArcFaceHead(embedding_size=128, num_classes=10)
        >>> head(torch.randn(4, 128), torch.tensor([0, 3, 3, 9])).shape
        torch.Size([])
    """

    def __init__(self, embedding_size: int, num_classes: int, margin: float = 0.5, scale: float = 64.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, embedding_size))
        nn.init.normal_(self.weight, std=0.01)
        self.margin, self.scale = margin, scale
        # Past theta = pi - margin, cos(theta + margin) stops decreasing: use a linear penalty there instead.
        self.threshold = math.cos(math.pi - margin)
        self.fallback = math.sin(math.pi - margin) * margin

    def logits(self, embeddings: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        cosine = F.linear(F.normalize(embeddings), F.normalize(self.weight)).clamp(-1 + 1e-7, 1 - 1e-7)
        if labels is None:
            return self.scale * cosine
        target = cosine.gather(1, labels[:, None])
        sine = torch.sqrt(1.0 - target**2)
        with_margin = target * math.cos(self.margin) - sine * math.sin(self.margin)
        with_margin = torch.where(target > self.threshold, with_margin, target - self.fallback)
        return self.scale * cosine.scatter(1, labels[:, None], with_margin)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self.logits(embeddings, labels), labels)
