"""FOP: Saeed, Khan, Nawaz, Yousaf & Del Bue, "Fusion and Orthogonal Projection for Improved Face-Voice
Association" (ICASSP 2022): two branches, a gated fusion of their outputs, and identity cross-entropy plus the
orthogonal projection loss on the fused vector.

- Branches: ``f = normalize(B_f(x_f))``, ``v = normalize(B_v(x_v))``, each B one Linear 128 -> BatchNorm -> ReLU ->
  Dropout 0.5 block.
- Gated fusion: ``g = sigmoid(W_2 ReLU(BN(W_1 [f; v])))`` (hidden 128), ``z = g * tanh(f) + (1 - g) * tanh(v)``.
- Loss over a batch of B (face, voice) pairs of identities y: ``L = CE(W z + b, y) + alpha * L_OPL(z, y)``, with
  (``losses/orthogonal_projection.py``) ``L_OPL = (1 - mean_{y_i = y_j, i != j} cos(z_i, z_j))
  + gamma * mean_{y_i != y_j} |cos(z_i, z_j)|``.
- Labels: the training identity (``identity``); P x K batches (``identity_classes``, K = 2 pairs an identity), so
  every fused vector has a same-identity partner for OPL's pull term.
- Embedding at test time: each modality's own branch, ``tanh(f)`` and ``tanh(v)``, what the reference's fusion
  layer returns beside z and what its verification compares (by squared L2; voxface scores the cosine).
- Reference settings (msaadsaeed/FOP ``main.py``, ``retrieval_model.py``, README): VGGFace 4096-d face and
  utterance-level 512-d voice features, embedding 128, Xavier-uniform weights with biases 0.01, alpha 1 (the README
  sweeps 0-5), gamma 0.7, Adam lr 1e-5 with weight decay 0.01, batch 128, 50 epochs. Here the inputs are whatever
  the feature stores hold (this toolkit's face and voice encoders), not VGGFace and the utterance-level model.

Departures from the reference code, each on purpose:
- Its best checkpoint is the one with the lowest EER on the test list (``online_evaluation.test`` every epoch);
  here the trainer selects on validation identities only.
- Its verification labels come from row parity (even rows same, odd rows different), which holds only for a list
  ordered that way (not the N or GNA unseen-unheard lists); here each trial's label is read from its list.
- It scores a trial by the squared L2 distance between ``tanh(f)`` and ``tanh(v)`` (not unit vectors, so not a
  function of their cosine alone); voxface's evaluation scores every method by the cosine of the same embeddings.
- Its batches are consecutive rows of one shuffle, where two pairs of one identity meet only by chance (a few per
  batch of 128 among 901 identities); here two pairs of each identity per batch, so the pull term always acts.

Example:
    >>> from voxface.methods.base import LabelSpace, Towers
    >>> method = Fop(FopArgs(), Towers(None, None, 24, 16, labels=LabelSpace(identities=2)))
    >>> batch = {"face_features": torch.randn(4, 24), "voice_features": torch.randn(4, 16),
    ...          "identity": torch.tensor([0, 0, 1, 1])}
    >>> sorted(k for k in method.losses(batch, gather=lambda x: x) if k.endswith("_loss"))
    ['opl_loss', 'softmax_loss']
    >>> method.eval().embed_face(features=batch["face_features"]).shape
    torch.Size([4, 128])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from voxface.losses.orthogonal_projection import OrthogonalProjectionLoss
from voxface.methods.base import Method, Towers, check_args, register_method
from voxface.methods.heads import branch_block


@dataclass
class FopArgs:
    embedding_size: int = 128
    gate_hidden: int = 128
    dropout: float = 0.5
    opl_weight: float = 1.0  # alpha
    opl_gamma: float = 0.7

    def validate(self) -> FopArgs:
        checks = [(self.embedding_size > 0 and self.gate_hidden > 0, "embedding_size / gate_hidden", "positive"),
                  (0 <= self.dropout < 1, "dropout", "in [0, 1)"),
                  (self.opl_weight >= 0, "opl_weight", "non-negative"),
                  (self.opl_gamma >= 0, "opl_gamma", "non-negative")]
        check_args(checks)
        return self


@register_method
class Fop(Method):
    __doc__ = __doc__
    name = "fop"
    citation = "FOP (Saeed et al., ICASSP 2022)"
    Args = FopArgs
    sampler = "identity_classes"
    batch_keys = ("identity",)
    pairs_per_identity = 2

    def __init__(self, args: FopArgs, towers: Towers) -> None:
        super().__init__(args, towers)
        labels = towers.label_space(self.name)
        size = args.embedding_size
        self.face_branch = branch_block(towers.face_dim, size, args.dropout)
        self.voice_branch = branch_block(towers.voice_dim, size, args.dropout)
        self.gate = nn.Sequential(branch_block(2 * size, args.gate_hidden, 0.0), nn.Linear(args.gate_hidden, size))
        self.classifier = nn.Linear(size, labels.identities)
        for part in (self.face_branch, self.voice_branch, self.gate, self.classifier):  # not the encoders
            for module in part.modules():
                if isinstance(module, nn.Linear):
                    nn.init.xavier_uniform_(module.weight)
                    nn.init.constant_(module.bias, 0.01)
        self.opl = OrthogonalProjectionLoss(args.opl_gamma)

    def face_head(self, encoded: torch.Tensor) -> torch.Tensor:
        return torch.tanh(F.normalize(self.face_branch(encoded), dim=1))

    def voice_head(self, encoded: torch.Tensor) -> torch.Tensor:
        return torch.tanh(F.normalize(self.voice_branch(encoded), dim=1))

    def fuse(self, face: torch.Tensor, voice: torch.Tensor) -> torch.Tensor:
        """The gated fusion z of unit branch outputs (B, D) each."""
        gate = torch.sigmoid(self.gate(torch.cat([face, voice], dim=1)))
        return gate * torch.tanh(face) + (1.0 - gate) * torch.tanh(voice)

    def losses(self, batch: dict[str, Any], gather: Callable[[torch.Tensor], torch.Tensor],
               generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """``softmax_loss`` and ``opl_loss`` (= alpha L_OPL) on the fused vectors of the global batch, and the
        OPL's two means."""
        face = F.normalize(self.face_branch(self.face_input(batch)), dim=1)
        voice = F.normalize(self.voice_branch(self.voice_input(batch, generator)), dim=1)
        fused = gather(self.fuse(face, voice))
        identity = gather(batch["identity"])
        opl = self.opl(fused, identity)
        return {"softmax_loss": F.cross_entropy(self.classifier(fused), identity),
                "opl_loss": self.args.opl_weight * opl,
                "opl_positive_mean": torch.tensor(self.opl.last_positive_mean),
                "opl_negative_mean": torch.tensor(self.opl.last_negative_mean)}
