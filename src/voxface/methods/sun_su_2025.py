"""Sun Jing & Su Jianbo (Shanghai Jiao Tong University), "Construction and Analysis of Cross-Modal General Feature
Space Driven by Prior Information", Acta Electronica Sinica 2025 (8): 2614 (DOI 10.12263/DZXB.20250022):
multi-level alignment with prior (§3-§5, Algorithm 1).

- Faces: ``T = ImageEncoder(x_f)`` (a frozen face-recognition teacher, the prior), ``F = FeatureMapping(T)``.
- Voices: ``V = AudioEncoder(x_v)`` (ECAPA-TDNN, Wav2vec 2.0 or HuBERT), trained.
- Loss on a batch of N pairs (``f_i`` = F's row i, ``v_i`` = V's, ``t_i`` = T's; cos the cosine similarity)::

      L_C   = -(1/N) sum_i log softmax_j(cos(v_i, f_j) / tau)_i - (1/N) sum_i log softmax_j(cos(f_i, v_j) / tau)_i
      L_OT  = sum_ab ||f_a - v_b||^2 gamma*_ab,  gamma* the exact plan with uniform marginals, over the kept pairs
              (pair i kept when cos(f_i, v_i) > cos(f_i, v_j) and > cos(f_j, v_i) for every j != i)
      L_RKD = mean_ij (cos(f_i, f_j) - cos(t_i, t_j))^2
      L     = L_C + alpha L_OT + beta L_RKD

  ``L_C`` Eq. (1)-(4) (``losses/contrastive.py``); ``L_OT`` Eq. (5)-(7) (``losses/optimal_transport.py``, gamma*
  held fixed, the gradient through the cost); ``L_RKD`` Eq. (9) (``losses/distillation.py``, the teacher side
  detached). Eq. (8) is ``L_C + alpha L_OT``; Algorithm 1 (step 9) adds ``L_RKD`` with weight 1 (``beta`` here).

Labels: identity-unique batches (one pair per identity); no label enters the loss (``batch_keys`` is empty): the
identity only builds the batches, so the other N - 1 pairs of a batch are true negatives for L_C and L_OT.

Reference settings: there is no public reference code (the paper links none; DESIGN.md §6 lists none), so the
settings are the paper's §5.2: Adam, weight decay 2e-5, batch 64; ECAPA with a step rate between 1e-3 and 1e-8;
Wav2vec 2.0 / HuBERT with a tri-stage rate 1e-7 -> 1e-5 -> 1e-7 (phases 15% / 1% / 7%); random 2 s crops, 80-dim
log-Mel fbank (25 ms window, 10 ms hop), SpecAugment (0-5 frames, 0-10 channels); faces 122 x 122, random
horizontal flip; a pretrained ResNet-34 face-recognition teacher. The paper gives no temperature, no width for the
mapping MLP and no epoch count: ``temperature`` 0.07 and one hidden layer of 512 are voxface's defaults.

Table 3's rows are argument sets of this one method (``terms``): contrastive only ``[contrastive, rkd]``, OT only
``[ot, rkd]``, both (the default); §6.2.2's RKD ablation drops ``rkd``. A term not named is not computed.

Where voxface departs from the paper, and why:
- Eq. (4) puts the distance ``1 - cos`` inside ``exp``, which would push positives apart: ``L_C`` uses similarity
  logits ``cos / tau``, the intended and standard form;
- Eq. (4) and Eq. (9) sum over the batch; voxface averages, so the scale does not depend on N;
- Eq. (5)'s squared distance is taken between L2-normalised embeddings (the scores are cosines, so the space
  aligned is the unit sphere, where it is ``2 - 2 cos``); on the discriminative pairs the exact plan is then the
  identity and L_OT a pull on confident positives (proof in ``losses/optimal_transport.py``); ``ot_pairs: all``
  runs the plan over the whole batch instead;
- faces are 112 x 112, not 122: ArcFace-style ResNet-34 teachers take exactly 112 (their fc layer expects 7 x 7);
- fine-tuning the face encoder (``face.frozen: false``) takes RKD's targets from a frozen copy of the pretrained
  teacher, so the prior does not drift with the student (the paper does not say);
- ``voice_hidden`` adds an MLP on the voice side, which the paper has none of; it exists for feature mode, where
  the voice encoder is frozen and would otherwise leave nothing to train on that side (default: none; the peers'
  benchmark configs set it to the face mapping's width, so that every method trains heads on both modalities);
- in the peers' benchmark (feature mode) the voice encoder is frozen, where the paper trains it, and the batch is
  the benchmark bases' (32 on VoxSynth, 256 on VoxCeleb1), the same for every method, not 64.

Example:
    >>> from voxface.encoders import build_voice_encoder, iresnet
    >>> from voxface.methods.base import Towers
    >>> face = iresnet(18, width=0.25, input_size=32, num_features=24)
    >>> voice = build_voice_encoder("ecapa", channels=[32, 32, 32, 32, 96], embedding_size=16)
    >>> method = SunSu2025(SunSu2025Args(mapping_hidden=[32]), Towers.of(face, voice))
    >>> batch = {"face": torch.randn(4, 3, 32, 32), "wave": torch.randn(4, 16000), "identity": torch.arange(4)}
    >>> sorted(k for k in method.losses(batch, gather=lambda x: x) if k.endswith("_loss"))
    ['contrastive_loss', 'ot_loss', 'rkd_loss']
    >>> method.eval().embed_face(batch["face"]).shape, method.embed_voice(batch["wave"]).shape
    (torch.Size([4, 16]), torch.Size([4, 16]))
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from voxface.losses.contrastive import ContrastiveLoss
from voxface.losses.distillation import RelationalDistillationLoss
from voxface.losses.optimal_transport import OptimalTransportLoss
from voxface.methods.base import Method, Towers, check_args, register_method
from voxface.methods.heads import FeatureMapping

TERMS = ("contrastive", "ot", "rkd")


@dataclass
class SunSu2025Args:
    terms: list[str] = field(default_factory=lambda: list(TERMS))  # Table 3's rows; §6.2.2 drops rkd
    ot_weight: float = 1.0  # alpha (Eq. 8; Algorithm 1 uses 1, Table 3 ablates it)
    rkd_weight: float = 1.0  # beta (Algorithm 1)
    temperature: float = 0.07
    learnable_temperature: bool = False
    ot_solver: str = "emd"
    # discriminative: the paper's filtered pairs (Eq. 7), where the exact plan is the identity and OT reduces to a
    # pull on confident positives (losses/optimal_transport.py); all: the plan over the whole batch
    ot_pairs: str = "discriminative"
    sinkhorn_reg: float = 0.05
    rkd_mode: str = "cosine"
    mapping_hidden: list[int] = field(default_factory=lambda: [512])  # FeatureMapping's hidden layers
    mapping_norm: str = "batch"
    mapping_dropout: float = 0.0
    mapping_activation: str = "relu"
    voice_hidden: list[int] = field(default_factory=list)  # none in the paper (module docstring)

    def validate(self) -> SunSu2025Args:
        unknown = [term for term in self.terms if term not in TERMS]
        checks = [
            (bool(self.terms) and not unknown and len(set(self.terms)) == len(self.terms),
             "terms", f"a non-empty list of distinct terms among {TERMS}"
                      + (f" ({unknown[0]!r} is none of them)" if unknown else "")),
            (self.terms != ["rkd"], "terms", "more than rkd alone (it aligns nothing across modalities)"),
            (self.temperature > 0, "temperature", "positive"),
            (min(self.ot_weight, self.rkd_weight) >= 0, "ot_weight / rkd_weight", "non-negative"),
            (self.ot_solver in ("emd", "sinkhorn"), "ot_solver", "'emd' or 'sinkhorn'"),
            (self.ot_pairs in ("discriminative", "all"), "ot_pairs", "'discriminative' or 'all'"),
            (self.rkd_mode in ("cosine", "distance"), "rkd_mode", "'cosine' or 'distance'"),
            (self.mapping_norm in ("batch", "layer", "none"), "mapping_norm", "'batch', 'layer' or 'none'"),
            (self.mapping_activation in ("relu", "gelu"), "mapping_activation", "'relu' or 'gelu'"),
        ]
        check_args(checks)
        return self


@register_method
class SunSu2025(Method):
    __doc__ = __doc__
    name = "sun_su_2025"
    citation = "Sun & Su, Acta Electronica Sinica 2025"
    published_as = "Sun & Su 2025"
    Args = SunSu2025Args
    sampler = "identity_unique"
    batch_keys = ()

    def __init__(self, args: SunSu2025Args, towers: Towers) -> None:
        super().__init__(args, towers)
        self.mapping = FeatureMapping(towers.face_dim, towers.voice_dim, tuple(args.mapping_hidden), args.mapping_norm,
                                      args.mapping_dropout, args.mapping_activation)
        self.voice_mlp = (FeatureMapping(towers.voice_dim, towers.voice_dim, tuple(args.voice_hidden),
                                         args.mapping_norm, args.mapping_dropout, args.mapping_activation)
                          if args.voice_hidden else None)
        self.contrastive = ContrastiveLoss(args.temperature, args.learnable_temperature)
        self.ot = OptimalTransportLoss(args.ot_solver, args.sinkhorn_reg, pairs=args.ot_pairs)
        self.rkd = RelationalDistillationLoss(args.rkd_mode)
        # A fine-tuned face encoder must not move the prior: RKD's targets come from a frozen copy of the pretrained
        # teacher in eval mode. Held in a list, it is no submodule, so it is neither trained nor saved.
        self._prior: list[nn.Module] = [] if towers.face_frozen or towers.face is None else [
            copy.deepcopy(towers.face).eval().requires_grad_(False)]

    def face_head(self, encoded: torch.Tensor) -> torch.Tensor:
        return self.mapping(encoded)

    def voice_head(self, encoded: torch.Tensor) -> torch.Tensor:
        return encoded if self.voice_mlp is None else self.voice_mlp(encoded)

    @torch.no_grad()
    def prior(self, faces: torch.Tensor) -> torch.Tensor:
        """The pretrained teacher's T for RKD while the face encoder is fine-tuned (frozen copy, eval mode)."""
        return self._prior[0].to(faces.device).eval()(faces)

    def losses(self, batch: dict[str, Any], gather: Callable[[torch.Tensor], torch.Tensor],
               generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Eq. (8)'s weighted terms (``contrastive_loss``, ``ot_loss`` = alpha L_OT, ``rkd_loss`` = beta L_RKD, those in
        ``terms``), the share of pairs OT kept and the temperature. Needs at least 2 pairs in the global batch."""
        teacher = self.face_input(batch)
        face = self.face_head(teacher)
        prior = self.prior(batch["face"]) if self._prior else teacher
        voice = self.voice_head(self.voice_input(batch, generator))
        # All ranks see the global batch (paper: one pair per identity in the batch, N x N similarities).
        face, voice, prior = gather(face), gather(voice), gather(prior)
        if len(face) < 2:
            raise ValueError("the alignment losses need at least 2 pairs in a batch")
        terms: dict[str, torch.Tensor] = {}
        if "contrastive" in self.args.terms:
            terms["contrastive_loss"] = self.contrastive(face, voice)
        if "ot" in self.args.terms:
            terms["ot_loss"] = self.args.ot_weight * self.ot(face, voice)
            terms["ot_kept_fraction"] = torch.tensor(self.ot.last_kept_fraction)
        if "rkd" in self.args.terms:
            terms["rkd_loss"] = self.args.rkd_weight * self.rkd(face, prior)
        terms["temperature"] = torch.tensor(self.contrastive.temperature)
        return terms
