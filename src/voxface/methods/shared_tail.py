"""The two-branch head of the Self-Lifting code (my-yy/sl_icmr2022 ``models/my_model.py``), which my-yy/vfal-eva
reuses for every peer it ports (VFMR, CMPC, Self-Lifting among them): per modality dropout -> Linear -> ReLU into a
hidden size, then ONE tail shared by both modalities (Linear -> ReLU -> Linear) into the common space."""

from __future__ import annotations

import torch
from torch import nn


class SharedTailHeads(nn.Module):
    """Face and voice heads with modality-specific fronts and a shared tail (reference: hidden 256, out 128,
    dropout 0.5 on the encoder outputs).

    Example:
        >>> heads = SharedTailHeads(face_dim=512, voice_dim=192)
        >>> heads.face(torch.randn(4, 512)).shape, heads.voice(torch.randn(4, 192)).shape
        (torch.Size([4, 128]), torch.Size([4, 128]))
    """

    def __init__(self, face_dim: int, voice_dim: int, hidden: int = 256, embedding_size: int = 128,
                 dropout: float = 0.5) -> None:
        super().__init__()
        self.face_front = nn.Sequential(nn.Dropout(dropout), nn.Linear(face_dim, hidden), nn.ReLU())
        self.voice_front = nn.Sequential(nn.Dropout(dropout), nn.Linear(voice_dim, hidden), nn.ReLU())
        self.tail = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, embedding_size))

    def face(self, encoded: torch.Tensor) -> torch.Tensor:
        """(B, face_dim) -> (B, embedding_size), not normalised (the losses normalise where they need to)."""
        return self.tail(self.face_front(encoded))

    def voice(self, encoded: torch.Tensor) -> torch.Tensor:
        """(B, voice_dim) -> (B, embedding_size), not normalised."""
        return self.tail(self.voice_front(encoded))
