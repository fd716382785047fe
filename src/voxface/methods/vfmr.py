"""VFMR: Xiong, Zhang, Liu & Du, "Voice-Face Cross-modal Matching and Retrieval: A Benchmark" (arXiv:1911.09338,
2019), as my-yy/vfal-eva ports it (``works/11_SS_DIM_VFMR_Barlow.py --name=VFMR``): lifted structure over the
voices and faces of a batch together.

- Heads: ``SharedTailHeads`` (per modality dropout 0.5 -> Linear 256 -> ReLU, shared Linear 256 -> ReLU ->
  Linear 128), the port's ``models/my_model.py``.
- Loss: the lifted structured loss of Song et al. (CVPR 2016, Eq. 4), the port's pytorch-metric-learning
  ``LiftedStructureLoss`` (not its ``GeneralizedLiftedStructureLoss``, Hermans et al. 2017) computed on the N x N
  matrix (``losses/lifted_structure.py``; the same value, tested against the library), on the 2B embeddings
  ``e = [v_1..v_B; f_1..f_B]`` with labels ``[y; y]``, L2-normalised, ``D_ij = ||e_i - e_j||``:
  ``J_ij = log( sum_{(i,k) in N} exp(m - D_ik) + sum_{(j,l) in N} exp(m - D_jl) ) + D_ij - m_p`` for every
  positive pair (i, j) (same identity, either modality, i != j), and ``L = 1/(2|P|) sum_{(i,j) in P} max(0, J_ij)^2``
  with negative margin m = 1 and positive margin m_p = 0 (the port's settings).
- Labels: training identities (``identity``), in P x K batches (``identity_classes``, K = 2 pairs an identity).
- Reference settings (the port): batch 256 of distinct identities, Adam lr 1e-4, gradient norm clipped at 1.0.

Departures, each on purpose:
- The paper itself trains a voice-anchored triplet loss ("TriNet"), not lifted structure; this is the method as the
  issue's table and the port have it. Its name stays VFMR for the port it follows.
- The port draws one pair per identity per batch, so a voice's only positive is its own face; here K = 2 pairs of
  each identity, so same-modality positives exist as in Song et al.'s batches (a larger batch per identity).
- No gradient clipping: the training loop has none, the same for every method.
- Feature mode only trains the heads; encoders are the benchmark's (the port also trains on stored embeddings).

Example:
    >>> from voxface.methods.base import LabelSpace, Towers
    >>> method = Vfmr(VfmrArgs(), Towers(None, None, 24, 16, labels=LabelSpace(identities=3)))
    >>> batch = {"face_features": torch.randn(6, 24), "voice_features": torch.randn(6, 16),
    ...          "identity": torch.tensor([0, 0, 1, 1, 2, 2])}
    >>> terms = method.losses(batch, gather=lambda x: x)
    >>> sorted(terms), terms["lifted_structure_loss"].ndim
    (['lifted_structure_loss'], 0)
    >>> method.eval().embed_face(features=batch["face_features"]).shape
    torch.Size([6, 128])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from voxface.losses.lifted_structure import LiftedStructureLoss
from voxface.methods.base import Method, Towers, check_args, register_method
from voxface.methods.shared_tail import SharedTailHeads


@dataclass
class VfmrArgs:
    neg_margin: float = 1.0  # m (the port: pytorch-metric-learning's default)
    pos_margin: float = 0.0
    hidden: int = 256
    embedding_size: int = 128
    dropout: float = 0.5

    def validate(self) -> VfmrArgs:
        checks = [(self.neg_margin > self.pos_margin >= 0, "neg_margin / pos_margin",
                   "non-negative with neg_margin > pos_margin"),
                  (self.hidden > 0 and self.embedding_size > 0, "hidden / embedding_size", "positive"),
                  (0 <= self.dropout < 1, "dropout", "in [0, 1)")]
        check_args(checks)
        return self


@register_method
class Vfmr(Method):
    __doc__ = __doc__
    name = "vfmr"
    citation = "VFMR (Xiong et al., 2019)"
    Args = VfmrArgs
    sampler = "identity_classes"
    batch_keys = ("identity",)
    pairs_per_identity = 2

    def __init__(self, args: VfmrArgs, towers: Towers) -> None:
        super().__init__(args, towers)
        self.heads = SharedTailHeads(towers.face_dim, towers.voice_dim, args.hidden, args.embedding_size,
                                     args.dropout)
        self.lifted = LiftedStructureLoss(neg_margin=args.neg_margin, pos_margin=args.pos_margin)

    def face_head(self, encoded: torch.Tensor) -> torch.Tensor:
        return self.heads.face(encoded)

    def voice_head(self, encoded: torch.Tensor) -> torch.Tensor:
        return self.heads.voice(encoded)

    def losses(self, batch: dict[str, Any], gather: Callable[[torch.Tensor], torch.Tensor],
               generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """``lifted_structure_loss`` over the global batch's voices and faces (module docstring)."""
        face, voice = self.embedded_pairs(batch, gather, generator)
        identity = gather(batch["identity"])
        embeddings = torch.cat([voice, face])
        return {"lifted_structure_loss": self.lifted(embeddings, torch.cat([identity, identity]))}
