"""The voice-face model of the paper (§3, Fig. 2): teacher -> mapping for faces, audio encoder for voices.

``T = ImageEncoder(x_f)``, ``F = FeatureMapping(T)``, ``V = AudioEncoder(x_v)``; scores are cosine
similarities between F and V. For ECAPA-TDNN the fbank (and, in training, SpecAugment) is computed
here on the model's device; SSL encoders take the waveform.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from voxface.media.fbank import FBANKS
from voxface.media.specaugment import SpecAugment
from voxface.encoders.ecapa import ECAPATDNN
from voxface.encoders.iresnet import IResNet
from voxface.methods.heads import FeatureMapping


class VoiceFaceModel(nn.Module):
    def __init__(self, teacher: IResNet, mapping: FeatureMapping, audio: nn.Module, mean_norm: bool = True,
                 specaugment: bool = True, teacher_frozen: bool = True, features: str = "kaldi",
                 fbank_settings: dict[str, Any] | None = None) -> None:
        """``features``: the fbank kind of an ECAPA encoder ("kaldi" or "speechbrain"); ``fbank_settings`` (as a
        checkpoint recorded them, ``front_end()``) replace its defaults and ``mean_norm``."""
        super().__init__()
        self.teacher, self.mapping, self.audio = teacher, mapping, audio
        self.teacher_frozen = teacher_frozen
        self.uses_fbank = isinstance(audio, ECAPATDNN)
        self.features = features if self.uses_fbank else None
        settings = fbank_settings if fbank_settings is not None else {"mean_norm": mean_norm}
        self.fbank = FBANKS[features](**settings) if self.uses_fbank else None
        self.specaugment = SpecAugment() if self.uses_fbank and specaugment else None
        if teacher_frozen:
            self.teacher.requires_grad_(False)

    def train(self, mode: bool = True) -> VoiceFaceModel:
        super().train(mode)
        if self.teacher_frozen:
            self.teacher.eval()  # a frozen teacher keeps its BatchNorm statistics
        return self

    @property
    def face_size(self) -> int:
        return self.teacher.input_size

    def front_end(self) -> dict[str, Any]:
        """What turns a 16 kHz waveform into the audio encoder's input, enough to rebuild it exactly:
        ``{"input": "fbank", "fbank": kind, "settings": {...}}`` or
        ``{"input": "waveform", "normalize_waveform": bool}``."""
        if self.fbank is not None:
            return {"input": "fbank", "fbank": self.features, "settings": dict(self.fbank.settings)}
        return {"input": "waveform", "normalize_waveform": bool(getattr(self.audio, "normalize_waveform", False))}

    def teacher_embeddings(self, faces: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) normalised faces -> T (B, teacher dim)."""
        if self.teacher_frozen:
            with torch.no_grad():
                return self.teacher(faces)
        return self.teacher(faces)

    def embed_faces(self, faces: torch.Tensor | None = None, teacher: torch.Tensor | None = None) -> torch.Tensor:
        """F from face images, or from precomputed teacher embeddings T."""
        if teacher is None:
            if faces is None:
                raise ValueError("embed_faces needs faces or teacher embeddings")
            teacher = self.teacher_embeddings(faces)
        return self.mapping(teacher)

    def embed_voices(self, wave: torch.Tensor, lengths: torch.Tensor | None = None,
                     generator: torch.Generator | None = None) -> torch.Tensor:
        """V from (B, samples) 16 kHz waveforms (valid ``lengths`` in samples for padded batches)."""
        if not self.uses_fbank:
            return self.audio(wave, lengths)
        feats, frames = self.fbank(wave, lengths)
        if self.specaugment is not None:
            feats = self.specaugment(feats, generator)
        return self.audio(feats, frames if lengths is not None else None)

    @staticmethod
    def score(face_embeddings: torch.Tensor, voice_embeddings: torch.Tensor) -> torch.Tensor:
        """Cosine similarity of paired rows."""
        return (F.normalize(face_embeddings, dim=-1) * F.normalize(voice_embeddings, dim=-1)).sum(-1)
