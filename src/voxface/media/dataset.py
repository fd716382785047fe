"""Face-voice pairs for training, and a batch sampler that puts each identity in a batch at most once.

The contrastive loss (paper Eq. 1-4) treats every off-diagonal pair in a batch as a negative, so
two pairs of one identity in a batch would be false negatives: ``IdentityBatchSampler`` prevents
that, across all ranks of a distributed run too. The sampler also draws each item's seed, so crops,
face choices and flips do not depend on the number of loader workers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from voxface.errors import ConfigError, MediaError
from voxface.media.audio import SAMPLE_RATE, read_voice
from voxface.media.faces import FACE_SIZE, face_to_tensor, read_face
from voxface.protocol.manifest import Manifest

log = logging.getLogger("voxface")
_reported_bad_files: set[str] = set()  # per process: each bad file is logged once


@dataclass
class PairConfig:
    crop_seconds: float = 2.0  # paper §5: random 2 s crops
    face_size: int = FACE_SIZE
    face_from_same_video: bool = False  # False: the face comes from any video of the identity
    flip_faces: bool = True  # random horizontal flip, in training only
    max_attempts: int = 8  # bad files replaced by other samples of the identity before giving up
    sample_rate: int = SAMPLE_RATE


ItemKey = tuple[int, int, int]  # (identity index, voice clip index, item seed)


class PairDataset(Dataset):
    """Pairs (voice crop, face) of one identity, indexed by ``ItemKey`` from ``IdentityBatchSampler``.

    An item is ``{"wave": (T,), "face": (3, S, S), "identity": int, "skipped": int}``; ``skipped``
    counts the bad files replaced while making it, so a training loop can report them per epoch.
    """

    def __init__(self, manifest: Manifest, config: PairConfig | None = None, train: bool = True) -> None:
        self.manifest, self.config, self.train = manifest, config or PairConfig(), train
        self.roots = manifest.roots
        # Flat per-identity views: clip -> video, and the faces of each video.
        self.voices = [ident.voices for ident in manifest.identities]
        self.voice_video = [[ytid for ytid, v in ident.videos.items() for _ in v.voices]
                            for ident in manifest.identities]
        self.faces = [ident.faces for ident in manifest.identities]
        self.video_faces = [{ytid: v.faces for ytid, v in ident.videos.items()} for ident in manifest.identities]

    @property
    def clips_per_identity(self) -> list[int]:
        return [len(v) for v in self.voices]

    def __len__(self) -> int:
        return sum(self.clips_per_identity)

    def __getitem__(self, key: ItemKey) -> dict[str, Any]:
        identity, clip, seed = key
        rng = np.random.default_rng(seed)
        skipped, tried = 0, []
        wave = face = None
        for _ in range(self.config.max_attempts):
            if wave is None:
                path = self.roots.voice(self.voices[identity][clip])
                try:
                    wave = read_voice(path, self.config.crop_seconds, rng if self.train else None,
                                      self.config.sample_rate)
                except MediaError as err:
                    skipped += 1
                    tried.append(str(path))
                    _report_once(str(path), err)
                    clip = int(rng.integers(len(self.voices[identity])))
                    continue
            candidates = self.faces[identity]
            if self.config.face_from_same_video:
                candidates = self.video_faces[identity][self.voice_video[identity][clip]] or candidates
            path = self.roots.face(candidates[int(rng.integers(len(candidates)))])
            try:
                face = read_face(path, self.config.face_size)
                break
            except MediaError as err:
                skipped += 1
                tried.append(str(path))
                _report_once(str(path), err)
        if wave is None or face is None:
            name = self.manifest.identities[identity].name
            raise MediaError(
                f"identity {name}: {self.config.max_attempts} attempts hit only bad files, e.g. {tried[:3]}"
            )
        flip = self.train and self.config.flip_faces and bool(rng.integers(2))
        return {
            "wave": torch.from_numpy(wave),
            "face": face_to_tensor(face, flip=flip),
            "identity": identity,
            "skipped": skipped,
        }


def _report_once(path: str, err: Exception) -> None:
    if path not in _reported_bad_files:
        _reported_bad_files.add(path)
        log.warning("skipping bad file: %s", err)


def collate_pairs(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack items into ``{"wave": (B, T), "face": (B, 3, S, S), "identity": (B,), "skipped": int}``."""
    if not items:
        raise MediaError("empty batch: the sampler produced no pairs")
    return {
        "wave": torch.stack([item["wave"] for item in items]),
        "face": torch.stack([item["face"] for item in items]),
        "identity": torch.tensor([item["identity"] for item in items]),
        "skipped": sum(item["skipped"] for item in items),
    }


class IdentityBatchSampler(Sampler[list[ItemKey]]):
    """Batches of ``ItemKey`` in which no identity appears twice, over all ranks together.

    Each epoch every identity's clips are shuffled; each global batch (``batch_size`` per rank times
    ``num_replicas``) draws distinct identities with probability proportional to their unused clips,
    so clips are consumed evenly. The epoch ends when fewer identities than a global batch have clips
    left; ``drop_last=False`` (one process only) goes on with smaller batches until every clip is used.
    """

    def __init__(self, clips_per_identity: list[int], batch_size: int, seed: int = 0, num_replicas: int = 1,
                 rank: int = 0, drop_last: bool = True) -> None:
        super().__init__()
        self.clips = np.asarray(clips_per_identity, dtype=np.int64)
        self.batch_size, self.seed = batch_size, seed
        self.num_replicas, self.rank, self.drop_last = num_replicas, rank, drop_last
        self.epoch = 0
        global_batch = batch_size * num_replicas
        usable = int((self.clips > 0).sum())
        if batch_size < 1:
            raise ConfigError(f"batch size must be at least 1, got {batch_size}")
        if not drop_last and num_replicas > 1:
            raise ConfigError("drop_last=False is only possible with one process: ranks need equal batches")
        if usable < global_batch:
            raise ConfigError(
                f"batch of {global_batch} distinct identities ({batch_size} x {num_replicas} ranks) is larger "
                f"than the {usable} identities with clips; lower the batch size"
            )
        self._lengths: dict[int, int] = {}

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _global_batches(self):
        rng = np.random.default_rng((self.seed, self.epoch))
        queues = [list(rng.permutation(n)) for n in self.clips]
        remaining = self.clips.astype(np.float64).copy()
        global_batch = self.batch_size * self.num_replicas
        while (remaining > 0).sum() >= global_batch:
            chosen = rng.choice(len(remaining), size=global_batch, replace=False, p=remaining / remaining.sum())
            remaining[chosen] -= 1
            yield [(int(i), int(queues[i].pop()), int(rng.integers(2**63 - 1))) for i in chosen]
        while not self.drop_last and remaining.sum() > 0:  # smaller batches until every clip is used
            rest = rng.permutation(np.flatnonzero(remaining > 0))
            remaining[rest] -= 1
            yield [(int(i), int(queues[i].pop()), int(rng.integers(2**63 - 1))) for i in rest]

    def __iter__(self):
        for batch in self._global_batches():
            yield batch[self.rank * self.batch_size:(self.rank + 1) * self.batch_size]

    def __len__(self) -> int:
        if self.epoch not in self._lengths:
            self._lengths[self.epoch] = sum(1 for _ in self._global_batches())
        return self._lengths[self.epoch]
