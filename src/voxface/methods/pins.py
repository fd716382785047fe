"""Learnable PINs: Nagrani, Albanie & Zisserman, "Learnable PINs: Cross-Modal Embeddings for Person Identity",
ECCV 2018. A face and a voice from the same video are a positive pair; no identity label is used.

- Heads: a face head and a voice head (Linear -> ReLU -> Linear, ``hidden`` wide), both into one ``embedding_size``
  space, L2-normalised, so distances lie in [0, 2] and the margin has a fixed scale (evaluation scores the cosine,
  a monotone function of this distance).
- Loss: the contrastive loss (Hadsell, Chopra & LeCun 2006) over the batch's B positive pairs and one mined
  negative per face, ``d(a, b) = ||a - b||_2``::

      L = 1/(2B) sum_i [ d(f_i, v_i)^2 + max(0, m - d(f_i, v_n(i)))^2 ]

- Curriculum mining (the paper: negatives mined within the batch, their hardness raised as training goes on; the
  rule below is voxface's statement of it): for face i, the other B - 1 voices of the batch are ranked by distance,
  farthest (easiest) first; ``n(i)`` is the one at position ``round(tau (B - 2))``, so tau = 0 takes the easiest
  negative and tau = 1 the hardest. tau starts at ``tau_start`` and rises by ``tau_step`` every ``tau_every``
  training steps up to ``tau_end``. Mining reads detached distances (a choice, not a gradient path).
- Labels: none (``video_pairs`` batches). Without labels a batch negative can be the anchor's own identity, seen in
  another video: rare with many identities, and part of the method, not a defect of the batches.
- Reference settings: no public code from the authors; the port my-yy/vfal-eva ``works/1_pins.py`` +
  ``utils/pair_selection_util.py``: margin 0.6, tau 0.3 -> 0.8 by 0.1 every 500 steps, batch 256, Adam lr 1e-4,
  shared 256 -> 128 heads.

Departures, from the port and the paper:
- The port's mining BUG (loop counter for mined index): it appends ``[i, j]`` with ``j`` the loop counter, not the
  ranked index, so face i's "negatives" are the voices at batch positions 0..k-1, whatever their distance, and can
  include its own positive voice (i < k). Here ``n(i)`` is the ranked voice's batch index, never i (tested).
- The port ranks voices' distances to faces, then pairs faces with voices (arguments swapped); here faces are the
  anchors in both ranking and loss.
- The port raises tau by adding 0.1 while ``tau < 0.8``: float round-off (0.7999...) lets it reach 0.9; here
  tau = min(tau_end, tau_start + tau_step * floor(step / tau_every)).
- The port uses the plain distance for positives and an unsquared hinge for negatives; here both are squared, the
  contrastive loss as Hadsell et al. define it. The port takes, per face, every negative up to the tau fraction of
  the ranking (easiest first); here one negative per face, at the tau-th rank, so tau sets the hardness itself.
- Steps are counted inside the method (a buffer saved with checkpoints, so a resumed run keeps its place on the
  curriculum); steps count in training mode only.
- Heads are small MLPs on the frozen encoders' outputs (feature mode), not the paper's two CNN streams.

Example:
    >>> from voxface.methods.base import Towers
    >>> method = Pins(PinsArgs(embedding_size=8, hidden=[16], tau_every=2), Towers(None, None, 12, 10))
    >>> batch = {"face_features": torch.randn(6, 12), "voice_features": torch.randn(6, 10)}
    >>> sorted(method.losses(batch, gather=lambda x: x)), method.tau  # one step taken
    (['contrastive_loss', 'negative_distance', 'tau'], 0.3)
    >>> _ = method.losses(batch, gather=lambda x: x); method.tau  # tau_every=2 steps: raised by tau_step
    0.4
    >>> method.eval().embed_face(features=batch["face_features"]).shape
    torch.Size([6, 8])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from voxface.methods.base import Method, Towers, check_args, register_method
from voxface.methods.heads import modality_heads


@dataclass
class PinsArgs:
    margin: float = 0.6  # the port's margin, on L2-normalised embeddings
    tau_start: float = 0.3  # the curriculum's hardness: 0 the easiest negative, 1 the hardest
    tau_end: float = 0.8
    tau_step: float = 0.1
    tau_every: int = 500  # training steps between two raises of tau (the port: 500)
    embedding_size: int = 256  # the shared space D (the paper: 256)
    hidden: list[int] = field(default_factory=lambda: [256])
    dropout: float = 0.0

    def validate(self) -> PinsArgs:
        checks = [
            (self.margin > 0, "margin", "positive"),
            (0 <= self.tau_start <= self.tau_end <= 1, "tau_start / tau_end", "0 <= tau_start <= tau_end <= 1"),
            (self.tau_step >= 0, "tau_step", "non-negative"),
            (self.tau_every >= 1, "tau_every", "a positive number of steps"),
            (self.embedding_size >= 1, "embedding_size", "positive"),
            (all(h >= 1 for h in self.hidden), "hidden", "a list of positive layer sizes"),
            (0 <= self.dropout < 1, "dropout", "in [0, 1)"),
        ]
        check_args(checks)
        return self


def curriculum_tau(step: int, start: float, end: float, rise: float, every: int) -> float:
    """The hardness after ``step`` training steps: ``start`` raised by ``rise`` every ``every`` steps, capped at
    ``end`` (rounded to 1e-9, so 0.3 + 5 x 0.1 is 0.8, not 0.7999...)."""
    return min(end, round(start + rise * (step // every), 9))


def mine_negatives(face: torch.Tensor, voice: torch.Tensor, tau: float) -> torch.Tensor:
    """(B, D) faces, (B, D) voices (pair i is face i with voice i) -> (B,) the batch index of each face's negative
    voice: the other voices ranked by distance, farthest first, and the one at ``round(tau (B - 2))`` taken.
    Never the face's own voice. Needs B >= 2."""
    batch = len(face)
    with torch.no_grad():
        distance = torch.cdist(face.detach(), voice.detach())
        distance.fill_diagonal_(float("-inf"))  # the positive sorts last: the first B - 1 ranks are negatives
        ranked = torch.argsort(distance, dim=1, descending=True, stable=True)
    return ranked[:, round(tau * (batch - 2))]


@register_method
class Pins(Method):
    __doc__ = __doc__
    name = "pins"
    citation = "Learnable PINs (Nagrani et al., ECCV 2018)"
    published_as = "PINs"
    Args = PinsArgs
    sampler = "video_pairs"
    batch_keys = ()

    def __init__(self, args: PinsArgs, towers: Towers) -> None:
        super().__init__(args, towers)
        self.face_mlp, self.voice_mlp = modality_heads(towers.face_dim, towers.voice_dim, args.embedding_size,
                                                       tuple(args.hidden), args.dropout)
        # training steps taken, for the curriculum; saved with checkpoints so a resumed run keeps its tau
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def face_head(self, encoded: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.face_mlp(encoded), dim=-1)

    def voice_head(self, encoded: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.voice_mlp(encoded), dim=-1)

    @property
    def tau(self) -> float:
        """The curriculum's hardness at the current step."""
        a = self.args
        return curriculum_tau(int(self.steps), a.tau_start, a.tau_end, a.tau_step, a.tau_every)

    def losses(self, batch: dict[str, Any], gather: Callable[[torch.Tensor], torch.Tensor],
               generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """``contrastive_loss`` (the module docstring's L), the mean distance to the mined negatives and tau. Each
        call in training mode is one step of the curriculum. Needs at least 2 pairs in the global batch."""
        face, voice = self.embedded_pairs(batch, gather, generator)
        if len(face) < 2:
            raise ValueError("the PINs loss needs at least 2 pairs in a batch (one to mine a negative from)")
        tau = self.tau
        negative = mine_negatives(face, voice, tau)
        positive_squared = (face - voice).pow(2).sum(dim=1)
        negative_distance = (face - voice[negative]).norm(dim=1)
        loss = 0.5 * (positive_squared + F.relu(self.args.margin - negative_distance).pow(2)).mean()
        if self.training:
            self.steps += 1
        return {"contrastive_loss": loss, "negative_distance": negative_distance.detach().mean(),
                "tau": torch.tensor(tau)}
