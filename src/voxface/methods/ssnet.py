"""SSNet: Nawaz, Janjua, Gallo, Mahmood & Calefati, "Deep Latent Space Learning for Cross-modal Mapping of Audio
and Visual Signals" (DICTA 2019): a single stream embeds faces and voices alike, trained to classify identities
with softmax cross-entropy plus a center loss.

- Network: ``SingleBranch`` (``methods/single_branch.py``): per-modality linear adapters (``adapter_dim``), then the
  shared stream, (Linear 128 -> BatchNorm -> ReLU -> Dropout 0.5) twice, L2-normalised: ``e = g(x)``.
- Loss, on the 2B embeddings of a batch ``e = [f_1..f_B; v_1..v_B]`` with labels ``[y; y]``:
  ``L = CE(W e + b, y) + lambda * L_C``,  ``L_C = 1/(4B) sum_i ||e_i - c_{y_i}||^2`` (``losses/center.py``, Wen et
  al. ECCV 2016 Eq. 2 over the 2B rows), the centres moved after each step by Eq. 4:
  ``c_j <- c_j - alpha * sum_i [y_i = j](c_j - e_i) / (1 + sum_i [y_i = j])``.
- Labels: the training identity (``identity``), one pair per identity in a batch (``identity_unique``): each
  identity's face and voice meet their one centre.
- Embedding at test time: ``g(x)`` of each modality; evaluation scores the cosine.
- Reference settings (msaadsaeed/SBNet ``ssnet_cent_git``, TF1, ``--loss cent``): input 512-d FaceNet and
  utterance-level voice features, branch 128-128, dropout 0.5, a 901-way fully connected classifier, lambda 1, Adam
  lr 1e-5, batch 128, 100 epochs; centre step ``1 - 0.3``.

Departures from the reference code, each on purpose:
- Its centres never move: the update op (``tf.scatter_sub``) is built but never run (its result is discarded), so
  the centres stay at their random start. Here they move by Eq. 4 with the center-loss paper's alpha 0.5, a rule
  rather than a gradient: the centre step stays what the paper says whatever the optimiser and lr schedule do.
- It applies its center loss to the 901-way logits, with a per-element mean; here to the embedding, as the center
  loss is defined (on the deep features) and with its 1/2 sum per row.
- Face and voice inputs of different sizes (here the stores' encoders) enter through per-modality linear adapters;
  the reference's two 512-d inputs needed none (``adapter: false`` reproduces that where the sizes agree).
- Its best checkpoint is picked by EER on the test list; here the trainer picks on validation identities only.

Example:
    >>> from voxface.methods.base import LabelSpace, Towers
    >>> method = Ssnet(SsnetArgs(adapter_dim=32), Towers(None, None, 24, 16, labels=LabelSpace(identities=3)))
    >>> batch = {"face_features": torch.randn(3, 24), "voice_features": torch.randn(3, 16),
    ...          "identity": torch.tensor([0, 1, 2])}
    >>> terms = method.losses(batch, gather=lambda x: x)
    >>> sorted(k for k in terms if k.endswith("_loss"))
    ['center_loss', 'softmax_loss']
    >>> bool(method.center.centers.abs().sum() > 0)  # the centres moved
    True
    >>> method.eval().embed_voice(features=batch["voice_features"]).shape
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
from voxface.losses.center import CenterLoss
from voxface.methods.base import Method, Towers, check_args, register_method
from voxface.methods.single_branch import SingleBranch


@dataclass
class SsnetArgs:
    hidden: list[int] = field(default_factory=lambda: [128, 128])  # the reference's two blocks
    dropout: float = 0.5
    adapter: bool = True
    adapter_dim: int = 512  # the reference's input size
    center_weight: float = 1.0  # lambda
    center_alpha: float = 0.5  # Wen et al. 2016's centre step

    def validate(self) -> SsnetArgs:
        checks = [(bool(self.hidden) and min(self.hidden) > 0, "hidden", "a non-empty list of positive widths"),
                  (0 <= self.dropout < 1, "dropout", "in [0, 1)"),
                  (self.adapter_dim > 0, "adapter_dim", "positive"),
                  (self.center_weight >= 0, "center_weight", "non-negative"),
                  (0 < self.center_alpha <= 1, "center_alpha", "in (0, 1]")]
        check_args(checks)
        return self


@register_method
class Ssnet(Method):
    __doc__ = __doc__
    name = "ssnet"
    citation = "SSNet (Nawaz et al., DICTA 2019)"
    published_as = "SSNet"
    Args = SsnetArgs
    sampler = "identity_unique"
    batch_keys = ("identity",)

    def __init__(self, args: SsnetArgs, towers: Towers) -> None:
        super().__init__(args, towers)
        if not args.adapter and towers.face_dim != towers.voice_dim:
            raise ConfigError(f"config value method.args.adapter must be true: the face and voice encoders give "
                              f"{towers.face_dim}-d and {towers.voice_dim}-d outputs")
        labels = towers.label_space(self.name)
        self.stream = SingleBranch(towers.face_dim, towers.voice_dim, args.adapter_dim, tuple(args.hidden),
                                   args.dropout, args.adapter)
        self.classifier = nn.Linear(self.stream.embedding_size, labels.identities)
        nn.init.xavier_uniform_(self.classifier.weight)  # TF1 fully_connected's default, zero bias
        nn.init.zeros_(self.classifier.bias)
        self.center = CenterLoss(labels.identities, self.stream.embedding_size, args.center_alpha)

    def face_head(self, encoded: torch.Tensor) -> torch.Tensor:
        return self.stream.face(encoded)

    def voice_head(self, encoded: torch.Tensor) -> torch.Tensor:
        return self.stream.voice(encoded)

    def losses(self, batch: dict[str, Any], gather: Callable[[torch.Tensor], torch.Tensor],
               generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """``softmax_loss`` and ``center_loss`` (= lambda L_C) over the global batch's faces and voices; the centres
        move after the loss is taken (training mode only)."""
        face, voice = self.stream.pair(self.face_input(batch), self.voice_input(batch, generator))
        face, voice, identity = gather(face), gather(voice), gather(batch["identity"])
        embeddings, labels = torch.cat([face, voice]), torch.cat([identity, identity])
        return {"softmax_loss": F.cross_entropy(self.classifier(embeddings), labels),
                "center_loss": self.args.center_weight * self.center(embeddings, labels)}
