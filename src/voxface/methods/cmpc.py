"""CMPC: Zhu, Xu, Wang, Qin, Sun, Wang & Dou, "Unsupervised Voice-Face Representation Learning by Cross-Modal
Prototype Contrast", IJCAI 2022 (code: Cocoxili/CMPC ``experiments/cmpc``): cross-modal instance contrast plus
contrast against the other modality's k-means prototypes, each pair re-weighted by how far its instance agreement
departs from its prototypes' agreement; no identity labels.

- Heads: ``SharedTailHeads`` (per modality dropout 0.5 -> Linear 256 -> ReLU, shared Linear 256 -> ReLU ->
  Linear 128), as my-yy/vfal-eva's port (``works/7_CMPC.py``) has them on stored embeddings.
- Memory: per video, a voice and a face row, ``m <- normalise(mu m + (1 - mu) normalise(e))`` (mu 0.5) each time the
  video is in a batch, initialised random unit vectors (the reference's ``FVMemoryBank``).
- Clustering (epoch starts from ``warmup_epochs`` on): k-means of each modality's memory at each granularity
  r = 1..R (``clusters``); centroids ``C_r``, each video's cluster ``c_r(i)`` and each cluster's concentration
  ``phi = mean_i ||z_i - C|| / log(n + 10)`` (n members; singletons take the largest), clipped to its 10th-90th
  percentiles and scaled to mean 0.2 (PCL's estimate, the reference's ``run_kmeans``).
- Loss on a batch of B pairs (v_i, f_i), L2-normalised, temperature tau 0.03, CE(logits, i) the cross-entropy of
  row i's logits against column i:
  ``l^ii_v2f(i) = CE(v_i . f_j / tau)``, ``l^ii_f2v(i) = CE(f_i . v_j / tau)``;
  ``l^ip_v2f(i) = 1/R sum_r CE(v_i . P^f_r(j) / phi^f_r(j))`` with ``P^f_r(j)`` the normalised face prototype of
  pair j's video (the batch's prototypes are the candidates), ``l^ip_f2v`` the same with voice prototypes;
  agreement ``rho_i = v_i . f_i - sum_r C^v_r(i) . C^f_r(i)`` (raw centroids), ``mu = mean(rho) + delta std(rho)``,
  ``sigma = std(rho) sqrt(kappa)`` (delta -1, kappa 0.1), and the weight ``w_i`` the Gaussian density
  ``N(rho; mu, sigma)`` accumulated over the batch's rho up to rho_i, divided by its total (the code's empirical
  Gaussian CDF: low-agreement pairs, the "deviate positives", weigh little);
  ``L = sum_i w_i (l^ii_v2f + l^ip_v2f)(i) / sum_i w_i + sum_i w_i (l^ii_f2v + l^ip_f2v)(i) / sum_i w_i``.
  Before the first clustering: the instance terms alone, all weights 1. Logged as ``instance_loss`` and
  ``prototype_loss`` (their weighted parts; the sum is L).
- Labels: none. Batches are same-video (voice, face) pairs (``video_pairs``); the method reads each pair's ``video``
  index to key its memory.
- Reference settings (Cocoxili/CMPC ``CONFIG.yaml``): tau 0.03, clusters 500/1000/1500 (VoxCeleb1, 1,001 train and
  val identities), 20 k-means iterations, concentration temperature 0.2, delta -1, kappa 0.1, memory momentum 0.5,
  Adam lr 5e-3 (cosine to 1e-4, weight decay 1e-5), batch 128, warm-up 300,000 samples before clustering, then
  clustering every 36,114 samples.

Departures, each on purpose:
- The reference's training loop re-creates its cluster results as empty at every batch, so the prototype term and
  the re-weighting act only on the one batch each clustering runs on (every 282nd batch); here a clustering's results
  are kept for its whole epoch (the paper's intent), and clustering runs at epoch starts.
- The reference divides the accumulated prototype loss by ``len(cluster_result)`` (4, the keys of its result dict)
  inside its loop over granularities, weighting them 1/64, 1/16, 1/4; here their mean (1/R each).
- k-means: scikit-learn's Lloyd iterations (20) from K rows drawn at random (seeded with ``seed`` + epoch); the
  reference's KeOps Lloyd iterations start from the first K rows (in dataset order, i.e. few identities).
- Memory rows are not saved with a checkpoint (non-persistent buffers): a resumed run refills them and, until it
  has, clusters partly random rows, as the reference's first clustering would without its warm-up.
- The reference trains ResNet encoders end to end (projection 512-d); feature mode trains only the heads above.
- As in the reference, the prototype candidates are the batch's pairs' prototypes, so one cluster can be both a
  pair's positive and (through another pair of the same cluster) a negative.

Example:
    >>> from voxface.methods.base import LabelSpace, Towers
    >>> labels = LabelSpace(identities=4, videos=8)
    >>> method = Cmpc(CmpcArgs(clusters=[2, 3], warmup_epochs=1), Towers(None, None, 24, 16, labels=labels))
    >>> batch = {"face_features": torch.randn(6, 24), "voice_features": torch.randn(6, 16),
    ...          "video": torch.tensor([0, 1, 2, 3, 4, 5])}
    >>> method.start_epoch(0)  # warm-up: no clusters yet
    >>> method.losses(batch, gather=lambda x: x)["prototype_loss"].item()
    0.0
    >>> method.start_epoch(1)  # k-means of both memories at 2 and 3 clusters
    >>> method.losses(batch, gather=lambda x: x)["prototype_loss"].item() > 0
    True
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from voxface.errors import ConfigError
from voxface.methods.base import Method, Towers, check_args, register_method
from voxface.methods.kmeans import kmeans
from voxface.methods.shared_tail import SharedTailHeads

# One granularity of one modality's clustering: each video's cluster (videos,), centroids (K, D), concentrations (K,).
Clustering = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


@dataclass
class CmpcArgs:
    temperature: float = 0.03  # tau of both terms' instance logits
    clusters: list[int] = field(default_factory=lambda: [500, 1000, 1500])  # granularities (VoxCeleb1)
    kmeans_iterations: int = 20
    concentration_temperature: float = 0.2  # the mean phi (PCL's estimate scaled to it)
    delta: float = -1.0  # mu = mean(rho) + delta std(rho)
    kappa: float = 0.1  # sigma = std(rho) sqrt(kappa)
    memory_momentum: float = 0.5
    warmup_epochs: int = 1  # epochs of instance contrast before the first clustering
    hidden: int = 256
    embedding_size: int = 128
    dropout: float = 0.5
    seed: int = 0  # k-means initialisation (with the epoch)

    def validate(self) -> CmpcArgs:
        checks = [(self.temperature > 0 and self.concentration_temperature > 0,
                   "temperature / concentration_temperature", "positive"),
                  (bool(self.clusters) and min(self.clusters) >= 2, "clusters", "a non-empty list of counts >= 2"),
                  (self.kmeans_iterations >= 1, "kmeans_iterations", "at least 1"),
                  (self.kappa > 0, "kappa", "positive"),
                  (0 <= self.memory_momentum < 1, "memory_momentum", "in [0, 1)"),
                  (self.warmup_epochs >= 0, "warmup_epochs", "non-negative"),
                  (self.hidden > 0 and self.embedding_size > 0, "hidden / embedding_size", "positive"),
                  (0 <= self.dropout < 1, "dropout", "in [0, 1)")]
        check_args(checks)
        return self


def cluster_memory(memory: np.ndarray, clusters: int, iterations: int, seed: int,
                   temperature: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """k-means of (N, D) memory rows -> each row's cluster (N,) int64, centroids (K, D) and concentrations (K,)
    (``phi``: PCL's estimate, clipped to its 10th-90th percentiles, scaled to mean ``temperature``)."""
    assign, centroids = kmeans(memory, clusters, iterations, seed)
    k = len(centroids)
    distance = np.linalg.norm(memory - centroids[assign], axis=1)
    counts = np.bincount(assign, minlength=k)
    phi = np.zeros(k)
    many = counts > 1
    if not many.any():  # every cluster a singleton (as many clusters as rows): no spread to estimate
        return assign, centroids, np.full(k, temperature)
    phi[many] = np.bincount(assign, weights=distance, minlength=k)[many] / counts[many] / np.log(counts[many] + 10)
    phi[~many] = phi.max()  # a singleton (or empty) cluster takes the loosest concentration
    phi = np.clip(phi, np.percentile(phi, 10), np.percentile(phi, 90))
    return assign, centroids, temperature * phi / phi.mean()


def agreement_weights(rho: torch.Tensor, delta: float, kappa: float) -> torch.Tensor:
    """(B,) agreements -> (B,) weights in (0, 1]: the Gaussian N(mu, sigma) density accumulated over the sorted batch
    up to each rho, over its total (mu = mean + delta std, sigma = std sqrt(kappa), population std); all 1 when the
    batch's rho do not vary."""
    rho = rho.detach().double()
    std = rho.std(unbiased=False)
    if len(rho) < 2 or not std > 0:
        return torch.ones_like(rho)
    mu, sigma = rho.mean() + delta * std, std * math.sqrt(kappa)
    order = torch.argsort(rho)
    density = torch.exp(-0.5 * ((rho[order] - mu) / sigma) ** 2)  # the 1/(sqrt(2 pi) sigma) cancels below
    cumulative = torch.cumsum(density, 0)
    weights = torch.empty_like(rho)
    weights[order] = cumulative / cumulative[-1]
    return weights


@register_method
class Cmpc(Method):
    __doc__ = __doc__
    name = "cmpc"
    citation = "CMPC (Zhu et al., IJCAI 2022)"
    Args = CmpcArgs
    sampler = "video_pairs"
    batch_keys = ("video",)

    def __init__(self, args: CmpcArgs, towers: Towers) -> None:
        super().__init__(args, towers)
        videos = towers.label_space(self.name).videos
        if videos < 1:
            raise ConfigError("the cmpc method needs the training split's video count (LabelSpace.videos)")
        self.heads = SharedTailHeads(towers.face_dim, towers.voice_dim, args.hidden, args.embedding_size,
                                     args.dropout)
        # Each video's voice and face memory, random unit rows until filled; not saved with checkpoints.
        self.register_buffer("voice_memory", F.normalize(torch.randn(videos, args.embedding_size), dim=1),
                             persistent=False)
        self.register_buffer("face_memory", F.normalize(torch.randn(videos, args.embedding_size), dim=1),
                             persistent=False)
        self.clusterings: dict[str, list[Clustering]] | None = None  # this epoch's, per modality; None in warm-up

    def face_head(self, encoded: torch.Tensor) -> torch.Tensor:
        return self.heads.face(encoded)

    def voice_head(self, encoded: torch.Tensor) -> torch.Tensor:
        return self.heads.voice(encoded)

    def start_epoch(self, epoch: int) -> None:
        """From ``warmup_epochs`` on, k-means of both memories at every granularity, kept for the epoch."""
        if epoch < self.args.warmup_epochs:
            self.clusterings = None
            return
        self.clusterings = {}
        for modality, memory in (("voice", self.voice_memory), ("face", self.face_memory)):
            rows = memory.cpu().numpy()
            self.clusterings[modality] = [
                tuple(torch.from_numpy(a) for a in cluster_memory(
                    rows, k, self.args.kmeans_iterations, self.args.seed + epoch, self.args.concentration_temperature))
                for k in self.args.clusters]

    @torch.no_grad()
    def update_memory(self, voice: torch.Tensor, face: torch.Tensor, video: torch.Tensor) -> None:
        """Momentum update of the batch's videos' memory rows (the reference's ``FVMemoryBank.update_memory``)."""
        mu = self.args.memory_momentum
        for memory, embedding in ((self.voice_memory, voice), (self.face_memory, face)):
            memory[video] = F.normalize(mu * memory[video] + (1 - mu) * F.normalize(embedding.detach(), dim=1), dim=1)

    def prototype_terms(self, anchor: torch.Tensor, clusterings: list[Clustering],
                        video: torch.Tensor) -> torch.Tensor:
        """(B,) mean over granularities of the cross-entropy of each normalised anchor against the batch's pairs'
        prototypes of the other modality (its own pair's the target), logits over each prototype's phi."""
        target = torch.arange(len(anchor), device=anchor.device)
        total = anchor.new_zeros(len(anchor))
        for assign, centroids, phi in clusterings:
            cluster = assign.to(anchor.device)[video]
            prototypes = F.normalize(centroids.to(anchor), dim=1)[cluster]
            logits = anchor @ prototypes.T / phi.to(anchor)[cluster][None, :]
            total = total + F.cross_entropy(logits, target, reduction="none")
        return total / len(clusterings)

    def losses(self, batch: dict[str, Any], gather: Callable[[torch.Tensor], torch.Tensor],
               generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """``instance_loss`` and ``prototype_loss``, the weighted parts of L over the global batch (module
        docstring), and the batch's smallest weight (``min_weight``)."""
        face, voice = self.embedded_pairs(batch, gather, generator)
        video = gather(batch["video"])
        self.update_memory(voice, face, video)
        v, f = F.normalize(voice, dim=1), F.normalize(face, dim=1)
        target = torch.arange(len(v), device=v.device)
        similarity = v @ f.T
        instance_v2f = F.cross_entropy(similarity / self.args.temperature, target, reduction="none")
        instance_f2v = F.cross_entropy(similarity.T / self.args.temperature, target, reduction="none")
        prototype = v.new_zeros(len(v))
        weights = torch.ones(len(v), dtype=v.dtype, device=v.device)
        if self.clusterings is not None:
            prototype = (self.prototype_terms(v, self.clusterings["face"], video)
                         + self.prototype_terms(f, self.clusterings["voice"], video))
            prototype_agreement = sum(
                (cv.to(v)[av.to(v.device)[video]] * cf.to(v)[af.to(v.device)[video]]).sum(1)
                for (av, cv, _), (af, cf, _) in zip(self.clusterings["voice"], self.clusterings["face"], strict=True))
            rho = similarity.diagonal() - prototype_agreement
            weights = agreement_weights(rho, self.args.delta, self.args.kappa).to(v)
        normaliser = weights.sum()
        return {"instance_loss": (weights * (instance_v2f + instance_f2v)).sum() / normaliser,
                "prototype_loss": (weights * prototype).sum() / normaliser,
                "min_weight": weights.min().detach()}
