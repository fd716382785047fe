"""LAFV: Kim, Shin, Oh, Kaspar, Elgharib & Matusik, "On Learning Associations of Faces and Voices", ACCV 2018.
Triplets of a voice, a face of the same identity and a face of another, trained with the triplet network's loss.

- Heads: a face head and a voice head (Linear -> ReLU -> Linear, ``hidden`` wide) into one ``embedding_size``
  space, unnormalised (the loss works on Euclidean distances; evaluation scores the cosine).
- Triplets: in an ``identity_unique`` batch (one pair per identity), voice i's positive is face i and its negative
  is face ``pi(i)`` of another pair, ``pi`` a random single-cycle permutation drawn with the step's ``generator``
  (a shuffled order, each pair taking the next one's face): every face is some voice's negative once, and never
  its own pair's. Without a generator (examples, tests) ``pi(i) = i + 1 mod B``.
- Loss: Hoffer & Ailon's ratio loss (``losses/ratio_triplet.py``), which the paper's triplet network trains with::

      d+ = |v_i - f_i|, d- = |v_i - f_pi(i)|,  (s+, s-) = softmax(d+, d-),  L = mean_i |(s+, s- - 1)|^2

  i.e. a softmax over the two distances whose target puts all weight on the negative's (equivalently a softmax
  over the negated distances that should pick the positive), scored by squared error, not cross-entropy: the
  squared error saturates once a triplet is well ordered (gradient ~ s+^2), where cross-entropy would keep
  pushing every triplet apart; the paper follows Hoffer & Ailon, so voxface does too.
- Labels: identities only through the batch layout; no label reaches the loss.
- Reference settings: TensorFlow inference code only from the authors; the port my-yy/vfal-eva ``works/3_LAFV.py``
  + ``utils/losses/triplet_lafv.py`` (batch 256, Adam lr 1e-4, shared 256 -> 128 heads).

Departures, from the port:
- The port takes the square root of the squared error (``|(s+, s- - 1)|`` unsquared); here the squared error as
  Hoffer & Ailon define it (the same minimiser, a different weighting of hard triplets).
- The port draws each triplet's negative face from a second random identity; here it is another pair's face in the
  batch, so each face is encoded once per step (same distribution: a uniformly drawn other identity's face).
- Heads are small MLPs on the frozen encoders' outputs (feature mode), not the paper's CNN streams.

Example:
    >>> from voxface.methods.base import Towers
    >>> method = Lafv(LafvArgs(embedding_size=8, hidden=[16]), Towers(None, None, 12, 10))
    >>> batch = {"face_features": torch.randn(5, 12), "voice_features": torch.randn(5, 10)}
    >>> sorted(method.losses(batch, gather=lambda x: x, generator=torch.Generator().manual_seed(0)))
    ['ratio_loss', 'triplet_accuracy']
    >>> other_faces(5, None).tolist()
    [1, 2, 3, 4, 0]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from voxface.losses.ratio_triplet import RatioTripletLoss
from voxface.methods.base import Method, Towers, check_args, register_method
from voxface.methods.heads import modality_heads


@dataclass
class LafvArgs:
    embedding_size: int = 128  # the shared space D (the port: 128)
    hidden: list[int] = field(default_factory=lambda: [256])
    dropout: float = 0.0

    def validate(self) -> LafvArgs:
        checks = [
            (self.embedding_size >= 1, "embedding_size", "positive"),
            (all(h >= 1 for h in self.hidden), "hidden", "a list of positive layer sizes"),
            (0 <= self.dropout < 1, "dropout", "in [0, 1)"),
        ]
        check_args(checks)
        return self


def other_faces(batch: int, generator: torch.Generator | None) -> torch.Tensor:
    """(batch,) the index of each pair's negative face: a single-cycle permutation of 0..batch-1 (no fixed point),
    random with ``generator``, ``i + 1 mod batch`` without one. Needs batch >= 2."""
    order = torch.arange(batch) if generator is None else torch.randperm(batch, generator=generator)
    negative = torch.empty(batch, dtype=torch.long)
    negative[order] = order.roll(-1)  # the pair at order[k] takes the face of the pair at order[k + 1]
    return negative


@register_method
class Lafv(Method):
    __doc__ = __doc__
    name = "lafv"
    citation = "LAFV (Kim et al., ACCV 2018)"
    Args = LafvArgs
    sampler = "identity_unique"
    batch_keys = ()

    def __init__(self, args: LafvArgs, towers: Towers) -> None:
        super().__init__(args, towers)
        self.face_mlp, self.voice_mlp = modality_heads(towers.face_dim, towers.voice_dim, args.embedding_size,
                                                       tuple(args.hidden), args.dropout)
        self.ratio = RatioTripletLoss()

    def face_head(self, encoded: torch.Tensor) -> torch.Tensor:
        return self.face_mlp(encoded)

    def voice_head(self, encoded: torch.Tensor) -> torch.Tensor:
        return self.voice_mlp(encoded)

    def losses(self, batch: dict[str, Any], gather: Callable[[torch.Tensor], torch.Tensor],
               generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """``ratio_loss`` (the module docstring's L) over the batch's triplets and the share of them whose positive
        face is nearer than the negative. Needs at least 2 pairs in the global batch."""
        face, voice = self.embedded_pairs(batch, gather, generator)
        if len(face) < 2:
            raise ValueError("the LAFV triplets need at least 2 pairs in a batch")
        negative = face[other_faces(len(face), generator).to(face.device)]
        with torch.no_grad():
            ordered = (voice - face).norm(dim=1) < (voice - negative).norm(dim=1)
        return {"ratio_loss": self.ratio(voice, face, negative), "triplet_accuracy": ordered.float().mean()}
