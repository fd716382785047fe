"""MSM: Moscati, Kats, Noman, Zaheer, Hou, Schedl & Nawaz, "Face-Voice Association with Inductive Bias for Maximum
Class Separation" (arXiv 2601.13651, 2026): FOP's two branches with a linear fusion, whose fused vector is classified
against fixed, maximally separated class vectors (Kasarla et al., "Maximum Class Separation as Inductive Bias in One
Matrix", NeurIPS 2022) instead of a learned classifier, under cross-entropy plus the orthogonal projection loss.

- Branches: ``f = normalize(B_f(x_f))``, ``v = normalize(B_v(x_v))``, each B one Linear -> BatchNorm -> ReLU ->
  Dropout 0.91 block of width C - 1, C the number of training identities (``LabelSpace.identities``).
- Linear fusion: ``z = w_f f + w_v v``, two learnable scalars (each drawn from U[0, 1) at the start).
- Class vectors (Kasarla et al.'s recursive closed form; tkasarla/max-separation-as-inductive-bias):
  ``P = V_{C-1}``, where ``V_1 = [1, -1]`` and ``V_k = [[1, -(1/k) 1_k^T], [0_{k-1}, sqrt(1 - 1/k^2) V_{k-1}]]``
  (k x (k + 1)). Its C columns ``p_c`` are unit vectors in C - 1 dimensions with ``<p_c, p_k> = -1/(C - 1)`` for
  every c != k (a regular simplex, zero mean). P is a fixed buffer (``class_vectors``, one class a row, saved with
  the checkpoint), never trained.
- Loss over a batch of B (face, voice) pairs of identities y: ``L = CE(P^T z, y) + alpha * L_OPL(z, y)``, the logits
  of identity c being ``<p_c, z>`` (no bias, no scale), with (``losses/orthogonal_projection.py``)
  ``L_OPL = (1 - mean_{y_i = y_j, i != j} cos(z_i, z_j)) + gamma * mean_{y_i != y_j} |cos(z_i, z_j)|``.
  As in the reference, f and v have no negative coordinate (ReLU before the normalisation), so while both fusion
  weights are positive the last class vector (no positive coordinate) never gives the top logit; kept as it is.
- Labels: the training identity (``identity``); batches of K = 2 pairs of each of their identities
  (``identity_classes``), so every fused vector has a same-identity partner for OPL's pull term.
- Embedding at test time: each modality's unit branch output, ``f`` and ``v`` (what the reference's linear fusion
  layer returns beside z, and what it compares by squared L2: between unit vectors, a monotone function of the
  cosine voxface scores).
- Reference settings (hcai-mms/MSM-face-voice ``main.py``, ``retrieval_model.py``, README): 512-d FaceNet and 192-d
  ECAPA-TDNN features, frozen; embedding 900 for the 901 training identities (``msms/prototypes901.npy``, the
  matrix above); dropout 0.91; Xavier-uniform Linear weights with biases 0.01; alpha 1 (the README sweeps 0, 0.1,
  0.5, 1, 2, 5), gamma 0.7; Adam lr 1e-4 with weight decay 0.01 on the branches and both fusion weights; batch 512;
  25 epochs (README; ``main.py`` defaults to 50). Here the inputs are whatever the feature stores hold.

Departures from the reference code, each on purpose:
- Its best checkpoint is the one with the lowest EER on the test list (``online_evaluation.test`` every epoch);
  here the trainer selects on validation identities only.
- Its verification labels come from row parity (even rows same, odd rows different), which holds only for a list
  ordered that way; here each trial's label is read from its list's label column.
- It loads the class vectors from a stored ``.npy``; here they are computed in closed form for the training split's
  own C (in float32 the very matrices it ships for C = 10, 64, 78, 901), so the embedding is C - 1 wide anywhere.
- Its batches are consecutive rows of one shuffle, where two pairs of one identity meet only by chance; here two
  pairs of each identity per batch, so the pull term always acts.

Example:
    >>> from voxface.methods.base import LabelSpace, Towers
    >>> method = Msm(MsmArgs(), Towers(None, None, 24, 16, labels=LabelSpace(identities=3)))
    >>> (method.class_vectors @ method.class_vectors.T).round(decimals=4)  # unit vectors, cosines -1/(C - 1)
    tensor([[ 1.0000, -0.5000, -0.5000],
            [-0.5000,  1.0000, -0.5000],
            [-0.5000, -0.5000,  1.0000]])
    >>> batch = {"face_features": torch.randn(6, 24), "voice_features": torch.randn(6, 16),
    ...          "identity": torch.tensor([0, 0, 1, 1, 2, 2])}
    >>> sorted(k for k in method.losses(batch, gather=lambda x: x) if k.endswith("_loss"))
    ['opl_loss', 'softmax_loss']
    >>> method.eval().embed_face(features=batch["face_features"]).shape  # C - 1 dimensions
    torch.Size([6, 2])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from voxface.errors import ConfigError
from voxface.losses.orthogonal_projection import OrthogonalProjectionLoss
from voxface.methods.base import Method, Towers, check_args, register_method
from voxface.methods.heads import branch_block


def max_separation_vectors(classes: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The ``classes`` x (``classes`` - 1) matrix whose rows are Kasarla et al.'s maximally separated class vectors:
    unit norm, every pairwise cosine ``-1/(classes - 1)``; deterministic (no random draw).

    Kasarla et al.'s recursion unrolled: with n = classes - 1, ``V_n`` is upper triangular, its row i the top
    row of ``V_{n-i}`` (``[1, -1/(n-i), ..., -1/(n-i)]`` from column i on) scaled by the product of the
    ``sqrt(1 - 1/k^2)`` for k = n - i + 1 .. n, which telescopes to ``sqrt((n + 1)(n - i) / (n (n - i + 1)))``.
    Computed in float64 whatever ``dtype`` (O(classes^2), no recursion depth).

    Example:
        >>> max_separation_vectors(2)
        tensor([[ 1.],
                [-1.]], dtype=torch.float64)
    """
    if classes < 2:
        raise ValueError(f"maximally separated class vectors need at least 2 classes, got {classes}")
    n = classes - 1
    i = torch.arange(n, dtype=torch.float64)[:, None]  # the row
    j = torch.arange(n + 1, dtype=torch.float64)[None, :]  # the column: the class
    top_row = (j == i).double() + (j > i).double() * (-1.0 / (n - i))
    scale = torch.sqrt((n + 1) * (n - i) / (n * (n - i + 1)))
    return (scale * top_row).T.contiguous().to(dtype)  # V_n's columns, one class a row


@dataclass
class MsmArgs:
    dropout: float = 0.91  # the reference's make_fc_1d
    opl_weight: float = 1.0  # alpha
    opl_gamma: float = 0.7

    def validate(self) -> MsmArgs:
        checks = [(0 <= self.dropout < 1, "dropout", "in [0, 1)"),
                  (self.opl_weight >= 0, "opl_weight", "non-negative"),
                  (self.opl_gamma >= 0, "opl_gamma", "non-negative")]
        check_args(checks)
        return self


@register_method
class Msm(Method):
    __doc__ = __doc__
    name = "msm"
    citation = "MSM (Moscati et al., arXiv 2026)"
    # no published_as: its figures are EERs on its own feature extractors, not the AUCs recipes/published.csv holds
    Args = MsmArgs
    sampler = "identity_classes"
    batch_keys = ("identity",)
    pairs_per_identity = 2

    def __init__(self, args: MsmArgs, towers: Towers) -> None:
        super().__init__(args, towers)
        classes = towers.label_space(self.name).identities
        if classes < 2:
            raise ConfigError(f"the {self.name} method needs at least 2 training identities (its class vectors span "
                              f"C - 1 dimensions), got {classes}")
        size = classes - 1  # the class vectors' space is the embedding space
        self.face_branch = branch_block(towers.face_dim, size, args.dropout)
        self.voice_branch = branch_block(towers.voice_dim, size, args.dropout)
        for part in (self.face_branch, self.voice_branch):  # the reference's init_weights; not the encoders
            for module in part.modules():
                if isinstance(module, nn.Linear):
                    nn.init.xavier_uniform_(module.weight)
                    nn.init.constant_(module.bias, 0.01)
        self.fusion_weights = nn.Parameter(torch.rand(2))  # w_f, w_v: the reference's torch.rand(1) each
        self.register_buffer("class_vectors", max_separation_vectors(classes, torch.float32))
        self.opl = OrthogonalProjectionLoss(args.opl_gamma)

    def face_head(self, encoded: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.face_branch(encoded), dim=1)

    def voice_head(self, encoded: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.voice_branch(encoded), dim=1)

    def fuse(self, face: torch.Tensor, voice: torch.Tensor) -> torch.Tensor:
        """The linear fusion z = w_f f + w_v v of unit branch outputs (B, C - 1) each."""
        return self.fusion_weights[0] * face + self.fusion_weights[1] * voice

    def logits(self, fused: torch.Tensor) -> torch.Tensor:
        """(B, C): each fused vector's inner product with every fixed class vector (P^T z)."""
        return fused @ self.class_vectors.T

    def losses(self, batch: dict[str, Any], gather: Callable[[torch.Tensor], torch.Tensor],
               generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """``softmax_loss`` (CE on the fixed class vectors' logits) and ``opl_loss`` (= alpha L_OPL) on the fused
        vectors of the global batch; the OPL's two means and the two fusion weights, for logging."""
        face = self.face_head(self.face_input(batch))
        voice = self.voice_head(self.voice_input(batch, generator))
        fused = gather(self.fuse(face, voice))
        identity = gather(batch["identity"])
        opl = self.opl(fused, identity)
        return {"softmax_loss": F.cross_entropy(self.logits(fused), identity),
                "opl_loss": self.args.opl_weight * opl,
                "opl_positive_mean": torch.tensor(self.opl.last_positive_mean),
                "opl_negative_mean": torch.tensor(self.opl.last_negative_mean),
                "fusion_face_weight": self.fusion_weights[0].detach(),
                "fusion_voice_weight": self.fusion_weights[1].detach()}
