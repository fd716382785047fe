"""SBNet: Saeed, Nawaz, Khan, Zaheer, Nandakumar, Yousaf & Mahmood, "Single-branch Network for Multimodal Training"
(ICASSP 2023): one branch embeds faces and voices alike, trained with identity cross-entropy plus the orthogonal
projection loss.

- Network: ``SingleBranch`` (``methods/single_branch.py``): per-modality linear adapters (``adapter_dim``), then the
  shared branch, (Linear 128 -> BatchNorm -> ReLU -> Dropout 0.5) twice, L2-normalised: ``e = g(x)``.
- Loss, on the 2B embeddings of a batch ``e = [f_1..f_B; v_1..v_B]`` with labels ``[y; y]``:
  ``L = CE(W e + b, y) + alpha * L_OPL(e, y)``, with (``losses/orthogonal_projection.py``)
  ``L_OPL = (1 - mean_{y_i = y_j, i != j} cos(e_i, e_j)) + gamma * mean_{y_i != y_j} |cos(e_i, e_j)|``.
- Labels: the training identity (``identity``), one pair per identity in a batch (``identity_unique``): each
  face's one positive is its own identity's voice, as in the reference's interleaved face-voice batches.
- Embedding at test time: ``g(x)`` of each modality (the reference scores squared L2 between these unit vectors,
  a monotone function of the cosine voxface scores).
- Reference settings (msaadsaeed/SBNet ``ssnet_fop``): 512-d FaceNet and utterance-level voice features, branch
  128-128, dropout 0.5, Xavier-uniform weights with biases 0.01, alpha 1, gamma 0.7, Adam lr 1e-2 with weight decay
  0.01, batch 128 (64 face-voice pairs, ``fvfv``), 100 epochs.

Departures from the reference code, each on purpose:
- Its best checkpoint is the one with the lowest EER on the test list (``online_evaluation.py``, every epoch),
  and its test labels come from row parity; here the trainer selects on validation identities only and the
  official lists carry their labels.
- Face and voice inputs of different sizes (here the stores' encoders) enter through per-modality linear adapters;
  the reference's two 512-d inputs needed none (``adapter: false`` reproduces that where the sizes agree).
- Its batches are consecutive rows of one shuffle, so an identity can recur within one; here each identity
  once per batch.

Example:
    >>> from voxface.methods.base import LabelSpace, Towers
    >>> method = Sbnet(SbnetArgs(adapter_dim=32), Towers(None, None, 24, 16, labels=LabelSpace(identities=3)))
    >>> batch = {"face_features": torch.randn(3, 24), "voice_features": torch.randn(3, 16),
    ...          "identity": torch.tensor([0, 1, 2])}
    >>> sorted(k for k in method.losses(batch, gather=lambda x: x) if k.endswith("_loss"))
    ['opl_loss', 'softmax_loss']
    >>> method.eval().embed_face(features=batch["face_features"]).shape
    torch.Size([3, 128])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from voxface.errors import ConfigError
from voxface.losses.orthogonal_projection import OrthogonalProjectionLoss
from voxface.methods.base import Method, Towers, check_args, register_method
from voxface.methods.single_branch import SingleBranch


@dataclass
class SbnetArgs:
    hidden: list[int] = field(default_factory=lambda: [128, 128])
    dropout: float = 0.5
    adapter: bool = True
    adapter_dim: int = 512  # the reference's input size
    opl_weight: float = 1.0  # alpha
    opl_gamma: float = 0.7

    def validate(self) -> SbnetArgs:
        checks = [(bool(self.hidden) and min(self.hidden) > 0, "hidden", "a non-empty list of positive widths"),
                  (0 <= self.dropout < 1, "dropout", "in [0, 1)"),
                  (self.adapter_dim > 0, "adapter_dim", "positive"),
                  (self.opl_weight >= 0, "opl_weight", "non-negative"),
                  (self.opl_gamma >= 0, "opl_gamma", "non-negative")]
        check_args(checks)
        return self


@register_method
class Sbnet(Method):
    __doc__ = __doc__
    name = "sbnet"
    citation = "SBNet (Saeed et al., ICASSP 2023)"
    Args = SbnetArgs
    sampler = "identity_unique"
    batch_keys = ("identity",)

    def __init__(self, args: SbnetArgs, towers: Towers) -> None:
        super().__init__(args, towers)
        if not args.adapter and towers.face_dim != towers.voice_dim:
            raise ConfigError(f"config value method.args.adapter must be true: the face and voice encoders give "
                              f"{towers.face_dim}-d and {towers.voice_dim}-d outputs")
        labels = towers.label_space(self.name)
        self.branch = SingleBranch(towers.face_dim, towers.voice_dim, args.adapter_dim, tuple(args.hidden),
                                   args.dropout, args.adapter, bias_init=0.01)
        self.classifier = nn.Linear(self.branch.embedding_size, labels.identities)
        nn.init.xavier_uniform_(self.classifier.weight)
        nn.init.constant_(self.classifier.bias, 0.01)
        self.opl = OrthogonalProjectionLoss(args.opl_gamma)

    def face_head(self, encoded: torch.Tensor) -> torch.Tensor:
        return self.branch.face(encoded)

    def voice_head(self, encoded: torch.Tensor) -> torch.Tensor:
        return self.branch.voice(encoded)

    def losses(self, batch: dict[str, Any], gather: Callable[[torch.Tensor], torch.Tensor],
               generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """``softmax_loss`` and ``opl_loss`` (= alpha L_OPL) over the global batch's faces and voices, and the
        OPL's two means (same-identity cosine, |different-identity cosine|)."""
        face, voice = self.branch.pair(self.face_input(batch), self.voice_input(batch, generator))
        face, voice, identity = gather(face), gather(voice), gather(batch["identity"])
        embeddings, labels = torch.cat([face, voice]), torch.cat([identity, identity])
        opl = self.opl(embeddings, labels)
        return {"softmax_loss": F.cross_entropy(self.classifier(embeddings), labels),
                "opl_loss": self.args.opl_weight * opl,
                "opl_positive_mean": torch.tensor(self.opl.last_positive_mean),
                "opl_negative_mean": torch.tensor(self.opl.last_negative_mean)}
