"""SpecAugment masking (Park et al. 2019) as the paper uses it (§5): per sample, in training only."""

from __future__ import annotations

import torch
from torch import nn


class SpecAugment(nn.Module):
    """Mask one random run of 0..``max_time`` frames and one of 0..``max_freq`` channels per sample
    (paper §5: 0-5 frames, 0-10 channels). Masked cells take the utterance's mean value, so the mask
    looks like silence-free average energy rather than a hard zero in log-energy space.

    Example:
        >>> aug = SpecAugment().train()
        >>> aug(torch.randn(8, 200, 80)).shape
        torch.Size([8, 200, 80])
    """

    def __init__(self, max_time: int = 5, max_freq: int = 10, time_masks: int = 1, freq_masks: int = 1) -> None:
        super().__init__()
        self.max_time, self.max_freq = max_time, max_freq
        self.time_masks, self.freq_masks = time_masks, freq_masks

    @staticmethod
    def _mask(size: int, max_width: int, batch: int, count: int, device: torch.device,
              generator: torch.Generator | None) -> torch.Tensor:
        """(batch, size) booleans: ``count`` runs per row, each of a width drawn from 0..max_width."""
        positions = torch.arange(size)[None, None]
        width = torch.randint(0, max_width + 1, (batch, count, 1), generator=generator)
        start = (torch.rand(batch, count, 1, generator=generator) * (size - width + 1)).long()
        return ((positions >= start) & (positions < start + width)).any(dim=1).to(device)

    def forward(self, feats: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """(B, frames, channels) -> the same shape; unchanged in eval mode.

        ``generator`` (a CPU generator) makes the masks reproducible, e.g. seeded by the training step,
        so that a resumed run draws the same masks as an uninterrupted one.
        """
        if not self.training:
            return feats
        batch, frames, channels = feats.shape
        time = self._mask(frames, min(self.max_time, frames), batch, self.time_masks, feats.device, generator)
        freq = self._mask(channels, min(self.max_freq, channels), batch, self.freq_masks, feats.device, generator)
        masked = time[:, :, None] | freq[:, None, :]
        fill = feats.mean(dim=(1, 2), keepdim=True).expand_as(feats)
        return torch.where(masked, fill, feats)
