"""Self-Lifting: Chen, Zhang, Liu & Du, "Self-Lifting: A Novel Framework for Unsupervised Voice-Face Association
Learning", ICMR 2022 (code: my-yy/sl_icmr2022 ``sl.py``): alternate k-means pseudo-labels of the training videos and
metric learning on them, without identity labels.

- Heads: ``SharedTailHeads`` (per modality dropout 0.5 -> Linear 256 -> ReLU, shared Linear 256 -> ReLU ->
  Linear 128), the reference's ``models/my_model.py``.
- Clustering (each epoch start): k-means (K clusters) on every training video's ``[v_bar; f_bar]``, its voice and
  face embeddings side by side, not normalised; a video's cluster is the pseudo-label of all its pairs.
- Loss: multi-similarity (Wang et al., CVPR 2019), pytorch-metric-learning's ``MultiSimilarityLoss``, on the 2B
  embeddings ``e = [v_1..v_B; f_1..f_B]`` with labels ``[c; c]`` (c: each pair's video's cluster), cosine
  similarities ``S_ij`` of the L2-normalised embeddings, positives P_i (same label, j != i), negatives N_i:
  ``L = 1/(2B) sum_i [ 1/alpha log(1 + sum_{P_i} exp(-alpha (S_ij - lambda)))
  + 1/beta log(1 + sum_{N_i} exp(beta (S_ij - lambda))) ]`` with alpha 2, beta 50, lambda (``base``) 1.
- Labels: none. Batches are same-video (voice, face) pairs (``video_pairs``); the method reads only each pair's
  ``video`` index, to key its memory bank.
- Reference settings (``sl.py``): 1,000 clusters (VoxCeleb1, 924 training identities), faiss k-means 20 iterations,
  batch 256, Adam lr 1e-3, alpha 2, beta 50, base 1, 250 batches an epoch.

Departures, each on purpose:
- The reference re-embeds the whole training set (every clip and face, eval mode) at each epoch start and clusters
  video means. Here a memory bank keeps each video's latest ``[v; f]`` pair embedding, written as batches pass
  (training mode, so with dropout), and ``start_epoch`` clusters it: the training loop hands a method no pass over
  the data. Videos not yet in the bank get no cluster.
- Epoch 0: the reference clusters the untrained heads' embeddings. With the bank still empty, here every video is
  its own class in epoch 0 (its own voice-face pairs are the only positives, instance discrimination), and the
  first clustering is at epoch 1's start; a video without a cluster keeps that own class later too.
- The bank is not saved with a checkpoint (non-persistent buffers): a resumed run refills it, and trains on
  own-video classes until the next epoch start finds enough filled rows (``clusters`` of them) to cluster.
- k-means: scikit-learn's Lloyd iterations (20) from K rows drawn at random (seeded with ``seed`` + epoch), as
  faiss's ``Kmeans`` starts, one initialisation.
- The reference draws a video uniformly and then a clip and a face of it; ``video_pairs`` draws clips uniformly.
- VoxSynth's cluster count is scaled to its training identities in the reference's proportion (its config).

Example:
    >>> from voxface.methods.base import LabelSpace, Towers
    >>> labels = LabelSpace(identities=4, videos=8)
    >>> method = SelfLifting(SelfLiftingArgs(clusters=2), Towers(None, None, 24, 16, labels=labels))
    >>> batch = {"face_features": torch.randn(6, 24), "voice_features": torch.randn(6, 16),
    ...          "video": torch.tensor([0, 1, 2, 3, 4, 5])}
    >>> terms = method.losses(batch, gather=lambda x: x)  # epoch 0: each video its own class
    >>> sorted(terms), float(terms["clustered_fraction"])
    (['clustered_fraction', 'multi_similarity_loss'], 0.0)
    >>> method.start_epoch(1)  # k-means on the 6 videos seen so far
    >>> float(method.losses(batch, gather=lambda x: x)["clustered_fraction"])
    1.0
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from voxface.errors import ConfigError
from voxface.methods.base import Method, Towers, check_args, register_method
from voxface.methods.kmeans import kmeans
from voxface.methods.shared_tail import SharedTailHeads


@dataclass
class SelfLiftingArgs:
    clusters: int = 1000  # K (sl.py ncentroids, for VoxCeleb1)
    kmeans_iterations: int = 20  # faiss niter in the reference
    alpha: float = 2.0
    beta: float = 50.0
    base: float = 1.0
    hidden: int = 256
    embedding_size: int = 128
    dropout: float = 0.5
    seed: int = 0  # k-means initialisation (with the epoch)

    def validate(self) -> SelfLiftingArgs:
        checks = [(self.clusters >= 2, "clusters", "at least 2"),
                  (self.kmeans_iterations >= 1, "kmeans_iterations", "at least 1"),
                  (self.alpha > 0 and self.beta > 0, "alpha / beta", "positive"),
                  (self.hidden > 0 and self.embedding_size > 0, "hidden / embedding_size", "positive"),
                  (0 <= self.dropout < 1, "dropout", "in [0, 1)")]
        check_args(checks)
        return self


def cluster_videos(bank: np.ndarray, clusters: int, iterations: int, seed: int) -> np.ndarray:
    """k-means of (videos, D) rows -> (videos,) int64 cluster indices (``min(clusters, videos)`` clusters)."""
    return kmeans(bank, clusters, iterations, seed)[0]


@register_method
class SelfLifting(Method):
    __doc__ = __doc__
    name = "self_lifting"
    citation = "Self-Lifting (Chen et al., ICMR 2022)"
    Args = SelfLiftingArgs
    sampler = "video_pairs"
    batch_keys = ("video",)

    def __init__(self, args: SelfLiftingArgs, towers: Towers) -> None:
        super().__init__(args, towers)
        videos = towers.label_space(self.name).videos
        if videos < 1:
            raise ConfigError("the self_lifting method needs the training split's video count (LabelSpace.videos)")
        self.heads = SharedTailHeads(towers.face_dim, towers.voice_dim, args.hidden, args.embedding_size,
                                     args.dropout)
        # imported here: pytorch-metric-learning brings scipy.stats, seconds at every command's start otherwise
        from pytorch_metric_learning.losses import MultiSimilarityLoss

        self.multi_similarity = MultiSimilarityLoss(alpha=args.alpha, beta=args.beta, base=args.base)
        # Each video's latest [voice; face] embedding, whether it has one yet, and its cluster (-1: none);
        # not saved with checkpoints (a resumed run refills them).
        self.register_buffer("bank", torch.zeros(videos, 2 * args.embedding_size), persistent=False)
        self.register_buffer("seen", torch.zeros(videos, dtype=torch.bool), persistent=False)
        self.register_buffer("pseudo", torch.full((videos,), -1, dtype=torch.long), persistent=False)

    def face_head(self, encoded: torch.Tensor) -> torch.Tensor:
        return self.heads.face(encoded)

    def voice_head(self, encoded: torch.Tensor) -> torch.Tensor:
        return self.heads.voice(encoded)

    def start_epoch(self, epoch: int) -> None:
        """Pseudo-labels for this epoch: k-means on the bank's filled rows, once there are ``clusters`` of them."""
        filled = self.seen.nonzero(as_tuple=True)[0]
        self.pseudo.fill_(-1)
        if len(filled) >= self.args.clusters:
            labels = cluster_videos(self.bank[filled].cpu().numpy(), self.args.clusters, self.args.kmeans_iterations,
                                    self.args.seed + epoch)
            self.pseudo[filled] = torch.from_numpy(labels).to(self.pseudo.device)

    def pair_labels(self, video: torch.Tensor) -> torch.Tensor:
        """(B,) video indices -> their pseudo-labels; a video without a cluster is a class of its own."""
        cluster = self.pseudo[video]
        return torch.where(cluster >= 0, cluster, self.args.clusters + video)

    def losses(self, batch: dict[str, Any], gather: Callable[[torch.Tensor], torch.Tensor],
               generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """``multi_similarity_loss`` over the global batch's voices and faces with the videos' pseudo-labels, and the
        share of pairs whose video had a cluster (module docstring)."""
        face, voice = self.embedded_pairs(batch, gather, generator)
        video = gather(batch["video"])
        with torch.no_grad():
            self.bank[video] = torch.cat([voice, face], dim=1).detach().to(self.bank.dtype)
            self.seen[video] = True
        labels = self.pair_labels(video)
        loss = self.multi_similarity(torch.cat([voice, face]), torch.cat([labels, labels]))
        clustered = (self.pseudo[video] >= 0).float().mean()
        return {"multi_similarity_loss": loss, "clustered_fraction": clustered}
