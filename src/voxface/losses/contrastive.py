"""Contrastive loss, paper Eq. (1)-(4): symmetric InfoNCE over the batch's cosine-similarity matrix."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def cosine_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N, D), (M, D) -> (N, M) cosine similarities."""
    return F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T


class ContrastiveLoss(nn.Module):
    """``L_C = L_C(v, f) + L_C(f, v)``: voice-to-face and face-to-voice InfoNCE, positives on the diagonal.

    Eq. (4) as printed puts the *distance* D = 1 - cos inside exp(D / tau); taken literally that would
    push positives apart, so this uses the intended (and standard) similarity logits cos / tau. Each
    direction is averaged over the batch (Eq. 4 sums; the mean keeps the scale independent of N).

    Example:
        >>> loss = ContrastiveLoss(temperature=0.1)
        >>> float(loss(torch.eye(4), torch.eye(4))) < float(loss(torch.eye(4), torch.eye(4).roll(1, 0)))
        True
    """

    def __init__(self, temperature: float = 0.07, learnable: bool = False, max_scale: float = 100.0) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        log_scale = torch.tensor(math.log(1.0 / temperature))
        # A learnable temperature is kept as log(1/tau), clamped as CLIP does, so it cannot blow up.
        self.log_scale = nn.Parameter(log_scale) if learnable else None
        self.register_buffer("fixed_log_scale", log_scale, persistent=False)
        self.max_log_scale = math.log(max_scale)

    @property
    def temperature(self) -> float:
        scale = self.log_scale if self.log_scale is not None else self.fixed_log_scale
        return float(torch.exp(-scale.detach().clamp(max=self.max_log_scale)))

    def forward(self, face: torch.Tensor, voice: torch.Tensor) -> torch.Tensor:
        scale = (self.log_scale if self.log_scale is not None else self.fixed_log_scale).clamp(max=self.max_log_scale)
        logits = cosine_matrix(voice, face) * scale.exp()  # [i, j]: voice i against face j
        targets = torch.arange(len(logits), device=logits.device)
        return F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)
