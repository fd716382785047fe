"""Face-voice pairs for training, and a batch sampler that puts each identity in a batch at most once.

The contrastive loss (paper Eq. 1-4) treats every off-diagonal pair in a batch as a negative, so
two pairs of one identity in a batch would be false negatives: ``IdentityBatchSampler`` prevents
that, across all ranks of a distributed run too. The sampler also draws each item's seed, so crops,
face choices and flips do not depend on the number of loader workers.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Mapping
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


def read_whole(*caches: Any) -> bool:
    """Whether every one of ``caches`` is a feature store view that reads many rows at once (``StoreView.stack``):
    then a dataset over them reads its batches whole."""
    return all(callable(getattr(cache, "stack", None)) for cache in caches)


class PairDataset(Dataset):
    """Pairs (voice crop, face) of one identity, indexed by ``ItemKey`` from ``IdentityBatchSampler``.

    An item is ``{"wave": (T,), "face": (3, S, S), "identity": int, "skipped": int}``; ``skipped``
    counts the bad files replaced while making it, so a training loop can report them per epoch.
    With ``teacher_cache`` (face path -> (2, D) embeddings of the face and of its mirror image, from a
    frozen teacher) an item carries ``"face_features": (D,)`` instead of ``"face"``, and no image is decoded;
    a face missing from the cache counts as a bad file. With ``voice_cache`` (voice path -> (1, D): a voice feature
    store's whole-clip embeddings, feature mode) an item carries ``"voice_features": (D,)`` instead of ``"wave"``.
    """

    def __init__(self, manifest: Manifest, config: PairConfig | None = None, train: bool = True,
                 teacher_cache: Mapping[str, np.ndarray] | None = None,
                 voice_cache: Mapping[str, np.ndarray] | None = None) -> None:
        self.manifest, self.config, self.train = manifest, config or PairConfig(), train
        self.teacher_cache, self.voice_cache = teacher_cache, voice_cache
        self.roots = manifest.roots
        # Flat per-identity views: clip -> video, and the faces of each video.
        self.voices = [ident.voices for ident in manifest.identities]
        self.voice_video = [[ytid for ytid, v in ident.videos.items() for _ in v.voices]
                            for ident in manifest.identities]
        self.faces = [ident.faces for ident in manifest.identities]
        self.video_faces = [{ytid: v.faces for ytid, v in ident.videos.items()} for ident in manifest.identities]
        # Global indices over the split, for methods keyed by clip or video (memory banks, video-level clustering).
        self.clip_offsets = np.concatenate([[0], np.cumsum([len(v) for v in self.voices])]).astype(np.int64)
        video_index = {(i, ytid): n for n, (i, ytid) in enumerate(
            (i, ytid) for i, ident in enumerate(manifest.identities) for ytid in ident.videos)}
        self.num_videos = len(video_index)
        self.clip_video_index = [[video_index[(i, ytid)] for ytid in clips] for i, clips in enumerate(self.voice_video)]
        self._rows: _StoreRows | None = None  # feature mode's look-ups (``batch``), built at its first call

    @property
    def clips_per_identity(self) -> list[int]:
        return [len(v) for v in self.voices]

    def __len__(self) -> int:
        return sum(self.clips_per_identity)

    @property
    def stored(self) -> bool:
        """Both halves from feature stores (feature mode): batches are read whole (``batch``)."""
        return read_whole(self.teacher_cache, self.voice_cache)

    def _draw(self, key: ItemKey, read_voice_at: Callable[[str, np.random.Generator], Any],
              read_face_at: Callable[[str], Any]) -> tuple[Any, Any, bool, int, int, int]:
        """One item's draws from its seed: (voice, face, flip, skipped, identity, clip), the voice and face as the two
        readers return them (each reader gets a path relative to its media folder and raises ``MediaError`` for a
        bad file, which is then replaced by another of the identity)."""
        identity, clip, seed = key
        rng = np.random.Generator(np.random.PCG64(seed))  # default_rng(seed), without its argument checks
        skipped, tried, first = 0, [], True
        wave = face = None
        for _ in range(self.config.max_attempts):
            if wave is None:
                relative = self.voices[identity][clip]
                try:
                    wave = read_voice_at(relative, rng)
                except MediaError as err:
                    skipped += 1
                    tried.append(str(self.roots.voice(relative)))
                    _report_once(tried[-1], err)
                    clip = int(rng.integers(len(self.voices[identity])))
                    continue
            candidates = self.faces[identity]
            if self.config.face_from_same_video:
                candidates = self.video_faces[identity][self.voice_video[identity][clip]] or candidates
            # The first face and the flip come from the seed's own bits (the sampler draws it uniformly), so a batch
            # read whole picks them for every item at once (``batch``); a replacement for a bad face, from ``rng``.
            relative = candidates[(seed >> 1) % len(candidates) if first else int(rng.integers(len(candidates)))]
            first = False
            try:
                face = read_face_at(relative)
                break
            except MediaError as err:
                skipped += 1
                tried.append(str(self.roots.face(relative)))
                _report_once(tried[-1], err)
        if wave is None or face is None:
            name = self.manifest.identities[identity].name
            raise MediaError(
                f"identity {name}: {self.config.max_attempts} attempts hit only bad files, e.g. {tried[:3]}"
            )
        flip = self.train and self.config.flip_faces and bool(seed & 1)
        return wave, face, flip, skipped, identity, clip

    def _stored_voice(self, relative: str, rng: np.random.Generator | None = None) -> str:
        if relative not in self.voice_cache:
            raise MediaError(f"{self.roots.voice(relative)}: not in the voice feature store (unreadable when it was "
                             "made)")
        return relative

    def _stored_face(self, relative: str) -> str:
        if relative not in self.teacher_cache:
            raise MediaError(f"{self.roots.face(relative)}: not in the teacher embedding cache (unreadable when it "
                             "was built)")
        return relative

    def _media_voice(self, relative: str, rng: np.random.Generator) -> np.ndarray:
        if self.voice_cache is not None:
            return np.asarray(self.voice_cache[self._stored_voice(relative)][0], dtype=np.float32)
        return read_voice(self.roots.voice(relative), self.config.crop_seconds, rng if self.train else None,
                          self.config.sample_rate)

    def _media_face(self, relative: str) -> np.ndarray:
        if self.teacher_cache is not None:
            return self.teacher_cache[self._stored_face(relative)]
        return read_face(self.roots.face(relative), self.config.face_size)

    def __getitem__(self, key: ItemKey) -> dict[str, Any]:
        wave, face, flip, skipped, identity, clip = self._draw(key, self._media_voice, self._media_face)
        item = {"voice_features" if self.voice_cache is not None else "wave": torch.from_numpy(wave),
                "identity": identity, "skipped": skipped, "clip": int(self.clip_offsets[identity] + clip),
                "video": self.clip_video_index[identity][clip]}
        if self.teacher_cache is not None:
            item["face_features"] = torch.from_numpy(np.asarray(face[int(flip)], dtype=np.float32))
        else:
            item["face"] = face_to_tensor(face, flip=flip)
        return item

    def batch(self, keys: list[ItemKey]) -> dict[str, Any]:
        """Feature mode (``stored``): the batch of ``keys`` as ``collate_pairs`` makes it from the items, the same
        draws and values, every item's draws and store rows taken at once (an item that meets a file the stores lack
        is drawn again one by one, its bad files replaced as ``_draw`` replaces them)."""
        if not self.stored:
            raise ValueError("PairDataset.batch reads feature stores: give both a teacher_cache and a voice_cache")
        if not keys:
            raise MediaError("empty batch: the sampler produced no pairs")
        index = self._rows or self._row_index()
        identity, clip, seed = np.asarray(keys, dtype=np.int64).reshape(-1, 3).T  # seeds are below 2**63
        flat = self.clip_offsets[identity] + clip
        count = index.face_count[flat]
        voice_rows = index.voice_row[flat]
        face_rows = index.face_row[index.face_start[flat] + (seed >> 1) % np.maximum(count, 1)]  # as _draw's first
        flips = seed & 1 if self.train and self.config.flip_faces else np.zeros_like(seed)
        skipped = 0
        for i in np.flatnonzero((voice_rows < 0) | (face_rows < 0) | (count == 0)):
            voice, face, flip, bad, _, drawn_clip = self._draw((int(identity[i]), int(clip[i]), int(seed[i])),
                                                               self._stored_voice, self._stored_face)
            flat[i] = self.clip_offsets[identity[i]] + drawn_clip
            voice_rows[i], face_rows[i] = self.voice_cache.rows([voice])[0], self.teacher_cache.rows([face])[0]
            flips[i], skipped = int(flip), skipped + bad
        return {"voice_features": torch.from_numpy(self.voice_cache.take(voice_rows)),
                "face_features": torch.from_numpy(self.teacher_cache.take(face_rows, flips)),
                "identity": torch.from_numpy(np.ascontiguousarray(identity)), "clip": torch.from_numpy(flat),
                "video": torch.from_numpy(index.clip_video[flat]), "skipped": skipped}

    def _row_index(self) -> _StoreRows:
        """Built once, at the first batch read whole: each clip's voice row and face candidates (those of its identity,
        or of its video where faces come from the voice's own video and it has any) as store rows."""
        faces: list[str] = [face for identity_faces in self.faces for face in identity_faces]
        identity_start = np.concatenate([[0], np.cumsum([len(f) for f in self.faces])]).astype(np.int64)
        start, count = [], []
        for i, videos in enumerate(self.voice_video):
            for ytid in videos:
                own = self.video_faces[i][ytid] if self.config.face_from_same_video else []
                if own:  # the video's faces, appended after every identity's
                    start.append(len(faces))
                    faces += own
                else:
                    start.append(int(identity_start[i]))
                count.append(len(own) or len(self.faces[i]))
        self._rows = _StoreRows(
            voice_row=self.voice_cache.rows(voice for voices in self.voices for voice in voices),
            face_start=np.asarray(start, dtype=np.int64), face_count=np.asarray(count, dtype=np.int64),
            face_row=self.teacher_cache.rows(faces),
            clip_video=np.asarray([v for videos in self.clip_video_index for v in videos], dtype=np.int64))
        return self._rows


@dataclass
class _StoreRows:
    """``PairDataset``'s feature-mode look-ups, per clip of the split (``clip_offsets`` order): ``voice_row`` its row in
    the voice store (-1: not there), its face candidates ``face_row[face_start:face_start + face_count]`` (face store
    rows, -1: not there) and ``clip_video`` its video's index."""

    voice_row: np.ndarray
    face_start: np.ndarray
    face_count: np.ndarray
    face_row: np.ndarray
    clip_video: np.ndarray


def _report_once(path: str, err: Exception) -> None:
    if path not in _reported_bad_files:
        _reported_bad_files.add(path)
        log.warning("skipping bad file: %s", err)


def collate_pairs(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack items into ``{"wave": (B, T) or "voice_features": (B, D), "face": (B, 3, S, S) or "face_features":
    (B, D), "identity", "clip", "video": (B,) int64, "skipped": int}``."""
    if not items:
        raise MediaError("empty batch: the sampler produced no pairs")
    batch = {key: torch.stack([item[key] for item in items]) for key in ("wave", "voice_features", "face",
                                                                          "face_features")
             if key in items[0]}
    for key in ("identity", "clip", "video"):
        batch[key] = torch.tensor([item[key] for item in items])
    batch["skipped"] = sum(item["skipped"] for item in items)
    return batch


class IdentityBatchSampler(Sampler[list[ItemKey]]):
    """Batches of ``ItemKey``, over all ranks together, in one of three layouts (``methods/base.py`` SAMPLERS):

    - ``identity_unique`` (default): no identity appears twice in a global batch. Distinct identities are drawn
      with probability proportional to their unused clips, so clips are consumed evenly; when fewer identities than
      a global batch have unused clips left, every identity's clips are reshuffled and drawing goes on.
    - ``identity_classes``: ``global batch / per_identity`` distinct identities with ``per_identity`` clips each (an
      identity with fewer clips repeats some), drawn the same way.
    - ``video_pairs``: clips in a uniform random order, labels unused (an identity may appear twice).

    An epoch is ``total clips // global batch`` batches, the same every epoch (the trainer, the schedules and
    resuming count on that). ``drop_last=False`` (one process only, for passes that must see every clip exactly
    once) instead goes on with smaller batches until every clip is used.
    """

    def __init__(self, clips_per_identity: list[int], batch_size: int, seed: int = 0, num_replicas: int = 1,
                 rank: int = 0, drop_last: bool = True, layout: str = "identity_unique",
                 per_identity: int = 1) -> None:
        super().__init__()
        self.clips = np.asarray(clips_per_identity, dtype=np.int64)
        self.batch_size, self.seed = batch_size, seed
        self.num_replicas, self.rank, self.drop_last = num_replicas, rank, drop_last
        self.layout, self.per_identity = layout, per_identity if layout == "identity_classes" else 1
        self.epoch = 0
        self.global_batch = batch_size * num_replicas
        usable = int((self.clips > 0).sum())
        if batch_size < 1:
            raise ConfigError(f"batch size must be at least 1, got {batch_size}")
        if layout not in ("identity_unique", "identity_classes", "video_pairs"):
            raise ConfigError(f"no batch layout {layout!r}: identity_unique, identity_classes or video_pairs")
        if layout == "identity_classes" and (per_identity < 2 or batch_size % per_identity):
            raise ConfigError(f"identity_classes batches need at least 2 pairs per identity, dividing the batch size "
                              f"({batch_size}); got {per_identity}")
        if not drop_last and num_replicas > 1:
            raise ConfigError("drop_last=False is only possible with one process: ranks need equal batches")
        if layout == "video_pairs" and int(self.clips.sum()) < self.global_batch:
            raise ConfigError(f"batch of {self.global_batch} clips is larger than the {int(self.clips.sum())} clips; "
                              "lower the batch size")
        if layout != "video_pairs" and usable < self.global_batch // self.per_identity:
            raise ConfigError(
                f"batch of {self.global_batch // self.per_identity} distinct identities ({batch_size} x {num_replicas} "
                f"ranks / {self.per_identity} per identity) is larger than the {usable} identities with clips; "
                "lower the batch size"
            )
        self._skip = 0
        self._position: Callable[[], tuple[int, int]] | None = None
        self._issued: deque[tuple[int, int]] = deque()  # (epoch, batch) handed out, while following a trainer

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def skip_next(self, batches: int) -> None:
        """Skip the first ``batches`` batches of the next pass: resuming a run interrupted mid-epoch."""
        self._skip = batches

    def _global_batches(self):
        rng = np.random.default_rng((self.seed, self.epoch))
        if self.layout == "video_pairs":
            yield from self._uniform_batches(rng)
            return

        def shuffled():
            return [list(rng.permutation(n)) for n in self.clips], self.clips.astype(np.float64).copy()

        def draw(chosen):
            remaining[chosen] -= 1
            seeds = rng.integers(2**63 - 1, size=len(chosen)).tolist()  # the stream of one draw at a time
            return [(int(i), int(queues[i].pop()), seed) for i, seed in zip(chosen, seeds, strict=True)]

        def draw_classes(chosen):  # per_identity clips of each; an identity short of clips takes a fresh pass of them
            batch = []
            for i in chosen:
                while len(queues[i]) < self.per_identity:  # the fresh pass without the clips still queued: no repeat
                    left = queues[i]
                    fresh = [int(c) for c in rng.permutation(self.clips[i])]
                    queues[i] = ([c for c in fresh if c not in left] if self.clips[i] > len(left) else fresh) + left
                remaining[i] = max(0.0, remaining[i] - self.per_identity)
                batch += [(int(i), int(queues[i].pop()), seed)
                          for seed in rng.integers(2**63 - 1, size=self.per_identity).tolist()]
            return batch

        queues, remaining = shuffled()
        if self.drop_last:
            identities = self.global_batch // self.per_identity
            for _ in range(max(1, int(self.clips.sum()) // self.global_batch)):
                if (remaining > 0).sum() < identities:  # a new pass; leftovers are drawn first
                    fresh, counts = shuffled()
                    queues = [new + old for new, old in zip(fresh, queues, strict=True)]
                    remaining = remaining + counts
                p = remaining / remaining.sum()
                chosen = rng.choice(len(remaining), size=identities, replace=False, p=p)
                yield draw(chosen) if self.per_identity == 1 else draw_classes(chosen)
            return
        while remaining.sum() > 0:
            alive = int((remaining > 0).sum())
            if alive >= self.global_batch:
                p = remaining / remaining.sum()
                yield draw(rng.choice(len(remaining), size=self.global_batch, replace=False, p=p))
            else:  # smaller batches until every clip is used once
                yield draw(rng.permutation(np.flatnonzero(remaining > 0)))

    def _uniform_batches(self, rng: np.random.Generator):
        keys = np.array([(i, c) for i, n in enumerate(self.clips) for c in range(n)], dtype=np.int64)
        order = rng.permutation(len(keys))
        batches = len(keys) // self.global_batch if self.drop_last else -(-len(keys) // self.global_batch)
        for b in range(max(1, batches)):
            chosen = keys[order[b * self.global_batch:(b + 1) * self.global_batch]].tolist()
            seeds = rng.integers(2**63 - 1, size=len(chosen)).tolist()
            yield [(i, c, seed) for (i, c), seed in zip(chosen, seeds, strict=True)]

    def follow(self, position: Callable[[], tuple[int, int]]) -> None:
        """Take the epoch and the batches already done in it from ``position()`` at the start of every pass
        (a trainer's counters), so that a run resumed mid-epoch continues exactly where it stopped; the
        trainer then confirms each batch it trains with ``check_next``."""
        self._position = position

    def check_next(self, expected: tuple[int, int]) -> None:
        """While following: the batch being trained, ``expected`` as (epoch, batch index), must be the next one
        this sampler handed out. RuntimeError otherwise: a pass started before the trainer's counters were
        right (a loader iterated before a resumed run's state was restored) would train the wrong batches."""
        if self._issued and (issued := self._issued.popleft()) != expected:
            raise RuntimeError(f"the batch sampler handed out batch {issued[1]} of epoch {issued[0]} (counted from 0) "
                               f"where the trainer is at batch {expected[1]} of epoch {expected[0]}")

    def __iter__(self):
        following = self._position is not None
        if following:
            epoch, done = self._position()
            self.set_epoch(epoch)
            self._skip = max(0, done)
            self._issued.clear()
        skip, self._skip = self._skip, 0
        for index, batch in enumerate(self._global_batches()):
            if index >= skip:
                if following:
                    self._issued.append((self.epoch, index))
                yield batch[self.rank * self.batch_size:(self.rank + 1) * self.batch_size]

    def __len__(self) -> int:
        if self.drop_last:
            return max(1, int(self.clips.sum()) // self.global_batch)
        if self.layout == "video_pairs":
            return max(1, -(-int(self.clips.sum()) // self.global_batch))
        return sum(1 for _ in self._global_batches())
