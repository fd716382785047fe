"""Center loss (Wen, Zhang, Li & Qiao, "A Discriminative Feature Learning Approach for Deep Face Recognition",
ECCV 2016), with the paper's own centre update, for SSNet (Nawaz et al., DICTA 2019)."""

from __future__ import annotations

import torch
from torch import nn


class CenterLoss(nn.Module):
    """``L_C = 1/(2B) sum_i ||x_i - c_{y_i}||^2`` (Eq. 2, averaged over the batch), and the centres' update of
    Eq. 4 after each training call:

        ``delta c_j = sum_i [y_i = j] (c_j - x_i) / (1 + sum_i [y_i = j])``,   ``c_j <- c_j - alpha * delta c_j``

    The centres are a buffer, not a parameter: they move by this rule (Algorithm 1), at the rate ``alpha`` whatever
    the optimiser and its learning-rate schedule, and only while the module is training and gradients are on
    (evaluation does not move them). The loss uses the centres from before the update; the gradient reaches only
    the features. They start at zero (the SSNet reference code starts them Xavier-random and never moves them).
    Saved with a checkpoint: a resumed run continues from the saved centres.

    Arguments: ``num_classes``, ``dim``; ``features`` (B, dim), ``labels`` (B,) int64 in [0, num_classes).

    Example:
        >>> loss = CenterLoss(num_classes=3, dim=2, alpha=0.5)
        >>> x = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
        >>> float(loss(x, torch.tensor([0, 0])))  # (4 + 4) / (2 * 2), centres at zero
        2.0
        >>> loss.centers[0].tolist()  # moved by 0.5 * (0 - (2, 2)) / 3 toward the class mean
        [0.3333333432674408, 0.3333333432674408]
    """

    def __init__(self, num_classes: int, dim: int, alpha: float = 0.5) -> None:
        super().__init__()
        self.alpha = alpha
        self.register_buffer("centers", torch.zeros(num_classes, dim))

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        centers = self.centers[labels]
        loss = (features - centers).pow(2).sum() / (2 * len(features))
        if self.training and torch.is_grad_enabled():
            self.update(features.detach(), labels)
        return loss

    @torch.no_grad()
    def update(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        """Eq. 4: each class present in the batch moves toward its members, damped by 1 + its count."""
        features = features.to(self.centers.dtype)
        sums = torch.zeros_like(self.centers).index_add_(0, labels, features)
        counts = torch.zeros(len(self.centers), dtype=self.centers.dtype, device=self.centers.device)
        counts.index_add_(0, labels, torch.ones_like(labels, dtype=self.centers.dtype))
        delta = (counts[:, None] * self.centers - sums) / (1 + counts[:, None])
        self.centers -= self.alpha * delta
