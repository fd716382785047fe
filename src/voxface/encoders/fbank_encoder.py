"""A voice encoder that takes log-Mel fbank (ECAPA-TDNN), wrapped so that it takes the waveform like every other.

Every voice encoder in voxface has one interface: ``forward(wave (B, samples) at 16 kHz, lengths=None,
generator=None) -> (B, embedding_size)``, ``.input`` ("fbank" or "waveform"), ``.front_end()`` and
``.embedding_size``. SSL encoders (``ssl.py``) take the waveform themselves; an fbank network gets its front end
here, computed on the model's device, and SpecAugment (paper §5: 0-5 frames, 0-10 channels) in training only.

Example:
    >>> from voxface.encoders.ecapa import ECAPATDNN
    >>> encoder = FbankEncoder(ECAPATDNN(channels=(32, 32, 32, 32, 96), embedding_size=16), "kaldi").eval()
    >>> encoder(torch.randn(2, 32000)).shape
    torch.Size([2, 16])
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from voxface.media.fbank import FBANKS
from voxface.media.specaugment import SpecAugment


class FbankEncoder(nn.Module):
    """``network`` (B, frames, mel bins) -> (B, D) behind the ``fbank`` front end ("kaldi" or "speechbrain").

    ``settings`` (as ``front_end()`` recorded them) replace the fbank's defaults, ``mean_norm`` among them.
    """

    input = "fbank"

    def __init__(self, network: nn.Module, fbank: str = "kaldi", settings: dict[str, Any] | None = None,
                 specaugment: bool = False) -> None:
        super().__init__()
        self.network = network
        self.fbank_kind = fbank
        self.fbank = FBANKS[fbank](**(settings or {}))
        self.specaugment = SpecAugment() if specaugment else None

    @property
    def embedding_size(self) -> int:
        return self.network.embedding_size

    def front_end(self) -> dict[str, Any]:
        """``{"input": "fbank", "fbank": kind, "settings": {...}}``: enough to rebuild the front end exactly."""
        return {"input": "fbank", "fbank": self.fbank_kind, "settings": dict(self.fbank.settings)}

    def forward(self, wave: torch.Tensor, lengths: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        feats, frames = self.fbank(wave, lengths)
        if self.specaugment is not None:  # a no-op in eval mode
            feats = self.specaugment(feats, generator)
        return self.network(feats, frames if lengths is not None else None)
