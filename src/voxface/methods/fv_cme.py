"""FV-CME: Horiguchi, Kanda & Nagamatsu, "Face-Voice Matching using Cross-modal Embeddings", ACM Multimedia 2018.
A face and a voice of one identity are a pair; the batch's other voices are the face's negatives.

- Heads: a face head and a voice head (Linear -> ReLU -> Linear, ``hidden`` wide) into one ``embedding_size``
  space, unnormalised (the N-pair loss works on inner products; evaluation scores the cosine).
- Loss: the N-pair loss (Sohn 2016) with faces as anchors and voices as their positives, ``f_i . v_j`` the logit of
  face i against voice j, plus Sohn's L2 penalty on both modalities' embeddings (``losses/npair.py``)::

      L = 1/B sum_i log(1 + sum_{j != i} exp(f_i . v_j - f_i . v_i))  +  lambda/4 (mean |f_i|^2 + mean |v_i|^2)

- Labels: identities only through the batch layout (``identity_unique``: one pair per identity, so no negative
  is a false one); no label reaches the loss.
- Reference settings: no public code from the authors; the port my-yy/vfal-eva ``works/2_FV-CME.py`` (InfoNCE on
  cosine similarities at temperature 1, face -> voice, batch 256, Adam lr 1e-4, shared 256 -> 128 heads).

Departures, from the port:
- The port's false negatives BUG (one identity twice in a batch): its loader picks ``names[index % len(names)]``
  for shuffled indices over 500 x 256 draws, so a batch can hold one identity twice and train its second pair as a
  negative. Here ``identity_unique`` batches hold each identity once.
- The port scores cosine similarities at temperature 1 (logits within [-1, 1], a nearly flat softmax); here the
  N-pair loss on inner products with Sohn's L2 penalty, as the N-pair loss is defined (``norm_weight`` = lambda,
  0.002 as TensorFlow's ``npairs_loss``).
- One direction, face -> voice, as the port; heads are small MLPs on the frozen encoders' outputs (feature mode),
  not the paper's CNN streams.

Example:
    >>> from voxface.methods.base import Towers
    >>> method = FvCme(FvCmeArgs(embedding_size=8, hidden=[16]), Towers(None, None, 12, 10))
    >>> batch = {"face_features": torch.randn(5, 12), "voice_features": torch.randn(5, 10)}
    >>> sorted(method.losses(batch, gather=lambda x: x))
    ['npair_loss', 'pair_accuracy']
    >>> method.eval().embed_voice(features=batch["voice_features"]).shape
    torch.Size([5, 8])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from voxface.losses.npair import NPairLoss
from voxface.methods.base import Method, Towers, check_args, register_method
from voxface.methods.heads import modality_heads


@dataclass
class FvCmeArgs:
    norm_weight: float = 0.002  # Sohn's lambda on the embeddings' squared norms
    embedding_size: int = 128  # the shared space D (the port: 128)
    hidden: list[int] = field(default_factory=lambda: [256])
    dropout: float = 0.0

    def validate(self) -> FvCmeArgs:
        checks = [
            (self.norm_weight >= 0, "norm_weight", "non-negative"),
            (self.embedding_size >= 1, "embedding_size", "positive"),
            (all(h >= 1 for h in self.hidden), "hidden", "a list of positive layer sizes"),
            (0 <= self.dropout < 1, "dropout", "in [0, 1)"),
        ]
        check_args(checks)
        return self


@register_method
class FvCme(Method):
    __doc__ = __doc__
    name = "fv_cme"
    citation = "FV-CME (Horiguchi et al., ACM MM 2018)"
    Args = FvCmeArgs
    sampler = "identity_unique"
    batch_keys = ()

    def __init__(self, args: FvCmeArgs, towers: Towers) -> None:
        super().__init__(args, towers)
        self.face_mlp, self.voice_mlp = modality_heads(towers.face_dim, towers.voice_dim, args.embedding_size,
                                                       tuple(args.hidden), args.dropout)
        self.npair = NPairLoss(args.norm_weight)

    def face_head(self, encoded: torch.Tensor) -> torch.Tensor:
        return self.face_mlp(encoded)

    def voice_head(self, encoded: torch.Tensor) -> torch.Tensor:
        return self.voice_mlp(encoded)

    def losses(self, batch: dict[str, Any], gather: Callable[[torch.Tensor], torch.Tensor],
               generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """``npair_loss`` (the module docstring's L) and the share of faces whose own voice scores highest. Needs at
        least 2 pairs in the global batch."""
        face, voice = self.embedded_pairs(batch, gather, generator)
        if len(face) < 2:
            raise ValueError("the N-pair loss needs at least 2 pairs in a batch")
        with torch.no_grad():
            hits = (face @ voice.T).argmax(dim=1) == torch.arange(len(face), device=face.device)
        return {"npair_loss": self.npair(face, voice), "pair_accuracy": hits.float().mean()}
