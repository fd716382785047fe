"""Wen, Xu, Jiang, Yang, He & Huang, "Seeking the Shape of Sound: An Adaptive Framework for Learning Voice-Face
Association" (CVPR 2021): a two-level modality alignment (one identity classifier shared by both modalities, plus
an N-pair term across them) with an identity re-weighting curriculum.

Labels: the training identity of each pair (``identity``), in identity-unique batches: the cross term takes the
batch's other pairs as negatives, as the reference loader does (one clip per identity per sample).

Loss on a batch of B pairs (face embedding ``f_i``, voice embedding ``v_i``, identity ``y_i``; each embedding is
its encoder output through ``BatchNorm -> ReLU -> Linear(no bias) -> Dropout``, D = ``embedding_size``)::

    global:  ce_i = CE(W f_i, y_i) + CE(W v_i, y_i)          W (identities x D): ONE classifier, plain dot product
    local:   n(a, b)_i = log(1 + c + sum_{j != i} exp(<b_j/|b_j|, a_i> - <b_i/|b_i|, a_i>))
             x_i = (n(v, f)_i + n(f, v)_i) / 2                 anchors unnormalised, candidates unit length
    L = (1/B) sum_i u_{y_i} (CE(W f_i, y_i) + CE(W v_i, y_i) + x_i)
    u_k = w_k K / sum_k' w_k'                                  K identities: the weights renormalised to mean 1

Both modalities' terms of a pair share its identity's weight, at fixed unit loss weights (code: loss_weight
[1, 1, 1]): the code re-weights identities, not modalities. The equations are the authors' code's (the paper calls
the cross term an N-pair loss; its text was not at hand to compare symbol by symbol).

``c`` (``cross_constant``) is what the reference code adds inside the log: the diagonal's exp(0) = 1 it leaves in the
sum, plus 3.4, so c = 4.4; the N-pair loss itself has c = 0. If a whole batch's ``u`` sums below 1e-3 the code adds
1 to each (a batch of filtered identities would otherwise train nothing); so does this.

Identity weights ``w`` (the curriculum, three stages in the paper: warm-up, identity-weight learning, retraining):
every identity keeps a moving average of its unweighted classification loss, ``a_k <- m a_k + (1 - m) ce_i``
(m = 0.9, a_k starts at 14.0), updated at every training step for the identities in the batch. Weights are 1 during
the warm-up (``warmup_steps``); then every ``update_every`` steps the curriculum advances: the first update keeps
only the easiest ``first_fraction`` (50%) by a_k (weight 1, the rest 0); each later one multiplies the weights of
those already kept by ``decay`` (0.99: the earlier, easier identities count less and less) and admits the
``add_fraction`` (2.4%, at least one) easiest not yet kept at weight 1, until ``max_fraction`` (90%) are kept. The
rest (the hardest 10%) stay at weight 0: the paper's unlearnable "personalized" identities, filtered out. ``a``,
``w``, the step count and the number of updates are persistent buffers (``identities`` long, from
``towers.label_space``): they are training state, saved with a checkpoint, and a resumed run goes on from them.

Reference code: KID-7391/seeking-the-shape-of-sound (``models/backbones.py`` Classifier and ``cross_logit``,
``models/voice2face_model.py`` ``forward_match``, ``models/center_model.py`` the curriculum,
``config/train_reweight.yaml`` and ``train_main.yaml``): heads 512 -> 128 with dropout 0.5; SGD lr 0.01, momentum
0.9, weight decay 1e-4, batch 64; warm-up 500 iterations, a curriculum update every 100 until 90% are kept (2,400
iterations), then retraining 10,000 iterations with those weights fixed. Their split is their own (924 / 112 / 189
identities, ``data/list_wav``): their published figures are not comparable with the PINs split's (DESIGN.md §6).

Where voxface departs, and why:
- the public port (my-yy/vfal-eva ``utils/losses/wen_reweight.py``, ``update_weight``) gives the first update's
  weights to identity index = rank position (``new_weights[i]`` for the i-th in the hardness order), so the kept
  "easy" identities are those with large label numbers, whatever their loss; here a weight is its identity's (the
  tests permute the identities and the weights follow); the port also keeps 30% first, not the code's 50%;
- the code's classification terms multiply the batch-mean cross-entropy by the batch-mean weight
  (``F.cross_entropy`` reduces before ``loss * weight``), so identity weights reach only the cross term; here each
  pair's cross-entropy is weighted by its identity's weight, as the re-weighting scheme means;
- the three stages run in one training budget (every method gets the same): after the last curriculum update the
  run goes on with the final weights fixed, without re-initialising the heads for a separate retraining stage;
- the code fine-tunes both backbones (IR-SE-50 face, thin ResNet-34 voice) with SGD; here the encoders are the
  benchmark's (frozen in feature mode) and the loop's Adam trains the heads, at the configuration's rates;
- ``add_fraction`` admits at least one identity per update, so a small training set (2.4% of fewer than 42 is 0)
  still advances; the code's int() would stall there.

Example:
    >>> from voxface.methods.base import LabelSpace, Towers
    >>> towers = Towers(None, None, face_dim=12, voice_dim=10, labels=LabelSpace(identities=6))
    >>> method = Wen2021(Wen2021Args(embedding_size=8), towers)
    >>> batch = {"face_features": torch.randn(4, 12), "voice_features": torch.randn(4, 10),
    ...          "identity": torch.tensor([5, 0, 3, 1])}
    >>> sorted(k for k in method.losses(batch, gather=lambda x: x) if k.endswith("_loss"))
    ['cross_loss', 'face_ce_loss', 'voice_ce_loss']
    >>> method.identity_weights().tolist()  # warm-up: every identity counts alike
    [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    >>> method.eval().embed_face(features=batch["face_features"]).shape
    torch.Size([4, 8])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from voxface.methods.base import Method, Towers, check_args, register_method


@dataclass
class Wen2021Args:
    embedding_size: int = 128  # the heads' output (code: output_channel 128)
    dropout: float = 0.5  # after each head's linear map (code)
    cross_weight: float = 1.0  # the cross term's weight (code: loss_weight [1, 1, 1]); 0 drops it
    cross_constant: float = 4.4  # c inside the cross term's log (code: exp(0) + 3.4; the N-pair loss: 0)
    reweight: bool = True  # the identity curriculum (code: models.weight)
    warmup_steps: int = 500  # steps with every weight 1 before the first update (code: it >= 500)
    update_every: int = 100  # steps between curriculum updates (code: weight_update_iter)
    first_fraction: float = 0.5  # identities kept by the first update (code: add_ratio 0.5)
    add_fraction: float = 0.024  # identities admitted by each later update (code: 0.024)
    max_fraction: float = 0.9  # the curriculum stops once this share is kept (code: ratio >= 0.90)
    decay: float = 0.99  # kept identities' weights shrink by this at each later update (code: weight *= 0.99)
    momentum: float = 0.9  # the per-identity moving average of the loss (code: loss_mean * 0.9 + loss * 0.1)
    initial_loss: float = 14.0  # every identity's moving average at the start (code: loss_mean = 14.0)

    def validate(self) -> Wen2021Args:
        fractions = (0 < self.first_fraction <= self.max_fraction <= 1 and 0 < self.add_fraction <= 1)
        checks = [
            (self.embedding_size >= 1, "embedding_size", "a positive integer"),
            (0 <= self.dropout < 1, "dropout", "in [0, 1)"),
            (self.cross_weight >= 0, "cross_weight", "non-negative"),
            (self.cross_constant >= 0, "cross_constant", "non-negative"),
            (self.warmup_steps >= 0, "warmup_steps", "a non-negative integer"),
            (self.update_every >= 1, "update_every", "a positive integer"),
            (fractions, "first_fraction / add_fraction / max_fraction",
             "fractions with 0 < first_fraction <= max_fraction <= 1 and 0 < add_fraction <= 1"),
            (0 < self.decay <= 1, "decay", "in (0, 1]"),
            (0 <= self.momentum < 1, "momentum", "in [0, 1)"),
        ]
        check_args(checks)
        return self


def _head(in_dim: int, out_dim: int, dropout: float) -> nn.Sequential:
    """The reference's head on a backbone output: BatchNorm -> ReLU -> Linear (no bias) -> Dropout."""
    return nn.Sequential(nn.BatchNorm1d(in_dim), nn.ReLU(), nn.Linear(in_dim, out_dim, bias=False),
                         nn.Dropout(dropout))


def cross_term(anchor: torch.Tensor, candidate: torch.Tensor, constant: float) -> torch.Tensor:
    """(B,) ``log(1 + c + sum_{j != i} exp(<c_j/|c_j|, a_i> - <c_i/|c_i|, a_i>))``: pair i's own candidate against
    the batch's others, the anchor unnormalised (its length acts as an inverse temperature), the candidates unit
    length (reference ``cross_logit``). With c = 0 it is ``losses/npair.py``'s term pair by pair, kept per pair
    here because each pair is weighted by its identity."""
    scores = anchor @ F.normalize(candidate, dim=-1).T  # (B anchors, B candidates)
    margins = scores - scores.diagonal()[:, None]
    others = ~torch.eye(len(scores), dtype=torch.bool, device=scores.device)
    return torch.log(1.0 + constant + (margins.exp() * others).sum(dim=1))


@register_method
class Wen2021(Method):
    __doc__ = __doc__
    name = "wen_2021"
    citation = "Seeking the Shape of Sound (Wen et al., CVPR 2021)"
    # no published_as: their figures are on their own split (924/112/189), not comparable with the PINs split's
    Args = Wen2021Args
    sampler = "identity_unique"
    batch_keys = ("identity",)

    def __init__(self, args: Wen2021Args, towers: Towers) -> None:
        super().__init__(args, towers)
        identities = towers.label_space(self.name).identities
        self.face_fc = _head(towers.face_dim, args.embedding_size, args.dropout)
        self.voice_fc = _head(towers.voice_dim, args.embedding_size, args.dropout)
        # one classifier for both modalities: its rows are identity anchors that faces and voices share (the
        # global level of the alignment)
        self.classifier = nn.Parameter(torch.empty(identities, args.embedding_size))
        nn.init.xavier_uniform_(self.classifier)
        # the curriculum's state, indexed by identity (persistent: a resumed run goes on from it)
        self.register_buffer("loss_average", torch.full((identities,), float(args.initial_loss)))
        self.register_buffer("weight", torch.ones(identities))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    def face_head(self, encoded: torch.Tensor) -> torch.Tensor:
        return self.face_fc(encoded)

    def voice_head(self, encoded: torch.Tensor) -> torch.Tensor:
        return self.voice_fc(encoded)

    # ---------------------------------------------------------------- the identity curriculum

    def kept_fraction(self) -> float:
        """The share of identities with a non-zero weight (1 during the warm-up)."""
        return int((self.weight > 0).sum()) / len(self.weight)  # exact: 45 of 50 is 0.9, not float32's 0.8999

    def identity_weights(self) -> torch.Tensor:
        """(identities,) the weights renormalised to mean 1 (``u`` in the module docstring)."""
        return self.weight * len(self.weight) / self.weight.sum()

    def sample_weights(self, identity: torch.Tensor) -> torch.Tensor:
        """(B,) each pair's weight: its identity's ``u`` (all 1 where a batch's weights sum below 1e-3)."""
        weights = self.identity_weights()[identity]
        return weights + 1 if float(weights.sum()) < 1e-3 else weights

    @torch.no_grad()
    def advance_curriculum(self) -> None:
        """One curriculum update: the first keeps the easiest ``first_fraction`` (by moving-average loss), each later
        one decays the kept weights and admits the easiest ``add_fraction`` not yet kept, until ``max_fraction``."""
        args, count = self.args, len(self.weight)
        first = int(self.updates) == 0
        if not first and self.kept_fraction() >= args.max_fraction:
            return
        if first:
            self.weight.zero_()
        admit = int(args.first_fraction * count) if first else max(1, int(args.add_fraction * count))
        candidates = torch.nonzero(self.weight == 0).flatten()
        # the easiest candidates by identity: argsort gives identity indices, so weights follow identities
        easiest = candidates[torch.argsort(self.loss_average[candidates], stable=True)[:admit]]
        self.weight.mul_(args.decay)
        self.weight[easiest] = 1.0
        self.updates += 1

    def _due(self) -> bool:
        step, args = int(self.steps), self.args
        return args.reweight and step >= args.warmup_steps and (step - args.warmup_steps) % args.update_every == 0

    # ---------------------------------------------------------------- the loss

    def losses(self, batch: dict[str, Any], gather: Callable[[torch.Tensor], torch.Tensor],
               generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """``face_ce_loss``, ``voice_ce_loss`` and ``cross_loss`` (each weighted per pair by its identity, the cross
        term also by ``cross_weight``), and the share of identities kept. In training mode a step also advances the
        curriculum when due (before the loss, as the reference does) and updates the batch identities' moving
        averages. Needs at least 2 pairs in the global batch."""
        face, voice = self.embedded_pairs(batch, gather, generator)
        identity = gather(batch["identity"])
        if len(face) < 2:
            raise ValueError("the cross term needs at least 2 pairs in a batch")
        if self.training and self._due():
            self.advance_curriculum()
        face_ce = F.cross_entropy(face @ self.classifier.T, identity, reduction="none")
        voice_ce = F.cross_entropy(voice @ self.classifier.T, identity, reduction="none")
        cross = 0.5 * (cross_term(voice, face, self.args.cross_constant)
                       + cross_term(face, voice, self.args.cross_constant))
        weights = self.sample_weights(identity) if self.args.reweight else torch.ones_like(face_ce)
        if self.training:
            with torch.no_grad():  # the hardness of an identity: its unweighted classification loss, averaged
                hardness = (face_ce + voice_ce).detach()
                average = self.loss_average[identity]
                self.loss_average[identity] = self.args.momentum * average + (1 - self.args.momentum) * hardness
                self.steps += 1
        return {"face_ce_loss": (weights * face_ce).mean(), "voice_ce_loss": (weights * voice_ce).mean(),
                "cross_loss": self.args.cross_weight * (weights * cross).mean(),
                "kept_identities": torch.tensor(self.kept_fraction())}
