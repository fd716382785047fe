"""DIMNet: Wen, Ismail, Liu, Raj & Singh, "Disjoint Mapping Network for Cross-modal Matching of Voices and Faces"
(ICLR 2019): each modality is mapped on its own to the covariates both share (identity, gender, nationality),
through classifiers SHARED by the two modalities; nothing pairs a voice with a face.

- Heads: ``f = M_f(x_f)``, ``v = M_v(x_v)``, one ``FeatureMapping`` per modality (Linear -> BatchNorm -> ReLU per
  hidden width, then Linear to the embedding; ``methods/heads.py``).
- Loss, for the covariates c chosen (``covariates``), on the 2B embeddings ``e = [v_1..v_B; f_1..f_B]`` with labels
  ``[y^c; y^c]``: ``L = sum_c CE(W_c e + b_c, y^c)``, one linear classifier (W_c, b_c) per covariate, the same
  for voices and faces (the terms ``identity_loss``, ``gender_loss``, ``nationality_loss``).
- Variants: the paper's DIMNet-I, -IG, -IN, -IGN are ``covariates`` [identity], [identity, gender], [identity,
  nationality], [identity, gender, nationality]; the default is DIMNet-IG, read here as the paper's strongest
  variant overall (Sun & Su 2025's copied "DIMNet" row does not name its variant).
- Labels: ``identity``, ``gender``, ``nationality`` (``LabelSpace``'s sizes), one pair per identity a batch
  (``identity_unique``; the loss needs no pairs, the batch just holds each identity's voice and face).
- Embedding at test time: ``M_f(x_f)`` and ``M_v(x_v)``; evaluation scores the cosine, as the paper does.
- Reference: the paper trains its voice and face CNNs from raw inputs; it published no code. The port
  (my-yy/vfal-eva ``works/11_SS_DIM_VFMR_Barlow.py``) trains 128-d embeddings over stored features with Adam.

Departures, each on purpose:
- The port computes its gender term with the IDENTITY classifier (``fun_id_classifier(emb, gender)``: gender 0/1
  read as identities 0/1) and builds a gender classifier it never uses, and has no nationality term; here each
  covariate has its own shared classifier, and nationality is available.
- Feature mode trains heads over this toolkit's frozen encoders, not the paper's CNNs (the same for every method).

Example:
    >>> from voxface.methods.base import LabelSpace, Towers
    >>> labels = LabelSpace(identities=3, genders=2, nationalities=2)
    >>> method = Dimnet(DimnetArgs(covariates=["identity", "gender", "nationality"]),
    ...                 Towers(None, None, 24, 16, labels=labels))
    >>> batch = {"face_features": torch.randn(3, 24), "voice_features": torch.randn(3, 16),
    ...          "identity": torch.tensor([0, 1, 2]), "gender": torch.tensor([0, 1, 1]),
    ...          "nationality": torch.tensor([1, 0, 1])}
    >>> sorted(method.losses(batch, gather=lambda x: x))
    ['gender_loss', 'identity_loss', 'nationality_loss']
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
from voxface.methods.base import Method, Towers, check_args, register_method
from voxface.methods.heads import FeatureMapping

COVARIATES = ("identity", "gender", "nationality")


@dataclass
class DimnetArgs:
    covariates: list[str] = field(default_factory=lambda: ["identity", "gender"])  # DIMNet-IG
    hidden: list[int] = field(default_factory=lambda: [256])
    embedding_size: int = 128  # the port's
    dropout: float = 0.0

    def validate(self) -> DimnetArgs:
        unknown = [c for c in self.covariates if c not in COVARIATES]
        checks = [(bool(self.covariates) and not unknown and len(set(self.covariates)) == len(self.covariates),
                   "covariates", f"a non-empty list of distinct covariates among {COVARIATES}"
                   + (f" ({unknown[0]!r} is none of them)" if unknown else "")),
                  (all(w > 0 for w in self.hidden) and self.embedding_size > 0, "hidden / embedding_size",
                   "positive"),
                  (0 <= self.dropout < 1, "dropout", "in [0, 1)")]
        check_args(checks)
        return self


@register_method
class Dimnet(Method):
    __doc__ = __doc__
    name = "dimnet"
    citation = "DIMNet (Wen et al., ICLR 2019)"
    # Sun & Su 2025 Table 2 copies a "DIMNet" row without naming its variant
    published_as = "DIMNet"
    Args = DimnetArgs
    sampler = "identity_unique"
    batch_keys = COVARIATES

    def __init__(self, args: DimnetArgs, towers: Towers) -> None:
        super().__init__(args, towers)
        labels = towers.label_space(self.name)
        sizes = {"identity": labels.identities, "gender": labels.genders, "nationality": labels.nationalities}
        for covariate in args.covariates:
            if sizes[covariate] < 2:
                raise ConfigError(f"config value method.args.covariates must leave out {covariate!r}: the training "
                                  f"split has {sizes[covariate]} value of it, nothing to classify")
        hidden = tuple(args.hidden)
        self.face_mapping = FeatureMapping(towers.face_dim, args.embedding_size, hidden, "batch", args.dropout)
        self.voice_mapping = FeatureMapping(towers.voice_dim, args.embedding_size, hidden, "batch", args.dropout)
        self.classifiers = nn.ModuleDict({c: nn.Linear(args.embedding_size, sizes[c]) for c in args.covariates})

    def face_head(self, encoded: torch.Tensor) -> torch.Tensor:
        return self.face_mapping(encoded)

    def voice_head(self, encoded: torch.Tensor) -> torch.Tensor:
        return self.voice_mapping(encoded)

    def losses(self, batch: dict[str, Any], gather: Callable[[torch.Tensor], torch.Tensor],
               generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """``<covariate>_loss``: cross-entropy of the global batch's voices and faces through that covariate's shared
        classifier, for each covariate in ``covariates``."""
        voice = gather(self.voice_head(self.voice_input(batch, generator)))
        face = gather(self.face_head(self.face_input(batch)))
        embeddings = torch.cat([voice, face])
        terms = {}
        for covariate, classifier in self.classifiers.items():
            labels = gather(batch[covariate])
            terms[f"{covariate}_loss"] = F.cross_entropy(classifier(embeddings), torch.cat([labels, labels]))
        return terms
