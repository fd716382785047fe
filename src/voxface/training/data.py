"""Data for training: the pair loader (identity-unique batches across ranks) and the validation trials."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, SequentialSampler

from voxface.errors import ConfigError, MediaError
from voxface.media.audio import read_voice
from voxface.media.dataset import IdentityBatchSampler, PairConfig, PairDataset, collate_pairs, read_whole
from voxface.media.faces import face_to_tensor, read_face
from voxface.methods.base import BATCH_KEYS, SAMPLERS, LabelSpace
from voxface.protocol.lists import Protocol
from voxface.protocol.manifest import Manifest
from voxface.training.resume import ignore_sigint


class ValidationTrials(Dataset):
    """Verification trials on the val identities: each of up to ``clips`` clips per identity meets one face of
    its own identity and one of another, the same trials every epoch. Voices are centre crops."""

    def __init__(self, manifest: Manifest, clips: int, crop_seconds: float, face_size: int,
                 teacher_cache: Mapping[str, np.ndarray] | None, seed: int = 0,
                 voice_cache: Mapping[str, np.ndarray] | None = None) -> None:
        if len(manifest.identities) < 2:
            raise MediaError(f"validation needs at least 2 identities with media, the val split has "
                             f"{len(manifest.identities)}")
        rng = np.random.default_rng([seed, 99])
        self.roots, self.crop, self.size, self.cache = manifest.roots, crop_seconds, face_size, teacher_cache
        self.voice_cache = voice_cache
        faces = [[f for f in ident.faces if teacher_cache is None or f in teacher_cache]
                 for ident in manifest.identities]
        self.trials: list[tuple[str, str, int]] = []
        for i, ident in enumerate(manifest.identities):
            others = [j for j in range(len(faces)) if j != i and faces[j]]
            if not faces[i] or not others:
                continue
            chosen = rng.choice(len(ident.voices), size=min(clips, len(ident.voices)), replace=False)
            for c in sorted(chosen):
                other = faces[others[int(rng.integers(len(others)))]]
                self.trials.append((ident.voices[c], faces[i][int(rng.integers(len(faces[i])))], 1))
                self.trials.append((ident.voices[c], other[int(rng.integers(len(other)))], 0))

    def __len__(self) -> int:
        return len(self.trials)

    @property
    def stored(self) -> bool:
        """Both halves from feature stores (feature mode): batches are read whole (``batch``)."""
        return read_whole(self.cache, self.voice_cache)

    def batch(self, indices: list[int]) -> dict[str, Any]:
        """Feature mode (``stored``): trials ``indices`` as ``collate_trials`` makes them from the items (a trial
        whose voice the store could not read left out; {} when none is left), each store's rows read at once."""
        if not self.stored:
            raise ValueError("ValidationTrials.batch reads feature stores: give both a teacher_cache and a voice_cache")
        trials = [self.trials[i] for i in indices if self.trials[i][0] in self.voice_cache]
        if not trials:
            return {}
        voices, faces, labels = zip(*trials, strict=True)
        return {"voice_features": torch.from_numpy(self.voice_cache.stack(voices)),
                "face_features": torch.from_numpy(self.cache.stack(faces)), "label": torch.tensor(labels)}

    def __getitem__(self, index: int) -> dict[str, Any]:
        voice, face, label = self.trials[index]
        item: dict[str, Any] = {"label": label, "valid": True}
        try:
            if self.voice_cache is not None:  # feature mode: the stored whole-clip embedding
                if voice not in self.voice_cache:
                    raise MediaError(f"{voice}: not in the voice feature store")
                item["voice_features"] = torch.from_numpy(np.asarray(self.voice_cache[voice][0], dtype=np.float32))
            else:
                item["wave"] = torch.from_numpy(read_voice(self.roots.voice(voice), self.crop, None))
            if self.cache is not None:
                item["face_features"] = torch.from_numpy(self.cache[face][0].astype(np.float32))
            else:
                item["face"] = face_to_tensor(read_face(self.roots.face(face), self.size))
        except MediaError:
            item["valid"] = False
        return item


def collate_trials(items: list[dict[str, Any]]) -> dict[str, Any]:
    items = [item for item in items if item["valid"]]
    if not items:
        return {}
    batch = {key: torch.stack([item[key] for item in items]) for key in ("wave", "voice_features", "face",
                                                                          "face_features") if key in items[0]}
    batch["label"] = torch.tensor([item["label"] for item in items])
    return batch


def label_space(manifest: Manifest, protocol: Protocol) -> tuple[LabelSpace, np.ndarray]:
    """The training split's label sizes and each identity's (gender, nationality) indices, (identities, 2) int64:
    what DIMNet's covariate classifiers and any method's classifiers or memory banks are built for."""
    people = [protocol.identities[ident.name] for ident in manifest.identities]
    genders = sorted({p.gender for p in people})
    nationalities = sorted({p.nationality for p in people})
    covariates = np.array([(genders.index(p.gender), nationalities.index(p.nationality)) for p in people],
                          dtype=np.int64).reshape(-1, 2)
    dataset = PairDataset(manifest)
    space = LabelSpace(identities=len(people), genders=len(genders), nationalities=len(nationalities),
                       videos=dataset.num_videos, clips=len(dataset), gender_names=tuple(genders),
                       nationality_names=tuple(nationalities))
    return space, covariates


class WholeBatches(Dataset):
    """A dataset read a batch at a time (feature mode): ``self[indices]`` is ``source.batch(indices)``. A loader
    over it takes a batch sampler as its ``sampler`` with ``batch_size=None``, PyTorch's way to fetch batches whole."""

    def __init__(self, source: PairDataset | ValidationTrials) -> None:
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, indices: list[Any]) -> dict[str, Any]:
        return self.source.batch(indices)


class BatchesHere:
    """What a single-process loader over ``WholeBatches`` yields (``collate(dataset[indices])`` for each batch of
    indices the sampler gives), read in the calling process; each ``for`` is a new pass of the sampler."""

    def __init__(self, sampler: IdentityBatchSampler, dataset: WholeBatches, collate: Any) -> None:
        self.sampler, self.dataset, self.collate = sampler, dataset, collate

    def __iter__(self):
        return (self.collate(self.dataset[indices]) for indices in self.sampler)

    def __len__(self) -> int:
        return len(self.sampler)


def as_read(batch: dict[str, Any]) -> dict[str, Any]:
    """The collate step of a loader over ``WholeBatches``: the batch is already whole."""
    return batch


class CovariateCollate:
    """``collate_pairs`` (or a batch read whole, as it is) plus each pair's ``gender`` and ``nationality`` indices,
    from its identity (picklable, for loader workers)."""

    def __init__(self, covariates: np.ndarray | None) -> None:
        self.covariates = covariates

    def __call__(self, items: list[dict[str, Any]] | dict[str, Any]) -> dict[str, Any]:
        batch = items if isinstance(items, dict) else collate_pairs(items)
        if self.covariates is not None:
            rows = torch.from_numpy(self.covariates[batch["identity"].numpy()])
            batch["gender"], batch["nationality"] = rows[:, 0].contiguous(), rows[:, 1].contiguous()
        return batch


class PairDataModule(L.LightningDataModule):
    """Training pairs in the batches a method asks for (``sampler``: ``methods/base.py`` SAMPLERS; ``per_identity``
    pairs of each identity for identity_classes; video_pairs takes each voice's face from its own video) and the
    validation trials; from media, or from feature stores (``teacher_cache`` for faces, ``voice_cache`` for voices).
    ``covariates`` (identities, 2): each training identity's gender and nationality indices (``label_space``)."""

    def __init__(self, train: Manifest, val: Manifest, pair_config: PairConfig, batch_size: int, seed: int,
                 workers: int, teacher_cache: Mapping[str, np.ndarray] | None, val_clips: int,
                 val_crop_seconds: float, voice_cache: Mapping[str, np.ndarray] | None = None,
                 sampler: str = "identity_unique", batch_keys: tuple[str, ...] = (), per_identity: int = 1,
                 covariates: np.ndarray | None = None) -> None:
        super().__init__()
        if sampler not in SAMPLERS or not set(batch_keys) <= set(BATCH_KEYS):
            raise ConfigError(f"the method asks for {sampler!r} batches with {', '.join(batch_keys) or 'no'} extra "
                              f"keys; the training data makes {', '.join(SAMPLERS)} batches with "
                              f"{', '.join(BATCH_KEYS)}")
        if {"gender", "nationality"} & set(batch_keys) and covariates is None:
            raise ConfigError("the method needs gender and nationality labels; give the data module covariates")
        if sampler == "video_pairs":  # a same-video pair is all a label-free method knows of who is who
            pair_config = dataclasses.replace(pair_config, face_from_same_video=True)
        self.train_set = PairDataset(train, pair_config, train=True, teacher_cache=teacher_cache,
                                     voice_cache=voice_cache)
        self.val_set = ValidationTrials(val, val_clips, val_crop_seconds, pair_config.face_size, teacher_cache, seed,
                                        voice_cache)
        self.batch_size, self.seed, self.workers = batch_size, seed, workers
        self.layout, self.per_identity, self.covariates = sampler, per_identity, covariates
        self.sampler: IdentityBatchSampler | None = None

    def _make_sampler(self) -> IdentityBatchSampler:
        world, rank = (self.trainer.world_size, self.trainer.global_rank) if self.trainer else (1, 0)
        return IdentityBatchSampler(self.train_set.clips_per_identity, self.batch_size, self.seed,
                                    num_replicas=world, rank=rank, drop_last=True, layout=self.layout,
                                    per_identity=self.per_identity)

    @property
    def steps_per_epoch(self) -> int:
        """Optimiser steps (batches per rank) in an epoch, the same every epoch; the loader is not built."""
        return len(self._make_sampler())

    def _new_sampler(self) -> IdentityBatchSampler:
        """A fresh training sampler, kept as ``self.sampler`` (following Lightning's step counter under a trainer)."""
        self.sampler = self._make_sampler()
        if self.trainer is not None:
            trainer, per_epoch = self.trainer, len(self.sampler)
            # Lightning restarts a resumed epoch's loader from its start, and its epoch counter is not yet
            # settled when the loader is first iterated (a run resumed on an epoch's last batch): the sampler
            # reads its position from the optimiser step alone, one step per batch.
            self.sampler.follow(lambda: divmod(trainer.global_step, per_epoch))
        return self.sampler

    def train_dataloader(self) -> DataLoader:
        sampler = self._new_sampler()
        whole = {"sampler": sampler, "batch_size": None} if self.train_set.stored else {}
        return DataLoader(WholeBatches(self.train_set) if whole else self.train_set, **whole,
                          batch_sampler=None if whole else sampler, collate_fn=CovariateCollate(self.covariates),
                          num_workers=self.workers, persistent_workers=self.workers > 0,
                          worker_init_fn=ignore_sigint)

    def train_batches(self) -> DataLoader | BatchesHere:
        """``train_dataloader``'s batches for the feature-mode loop: with no loader workers and stored features, read
        here batch by batch (the same sampler, reads and collate), without the loader's per-batch machinery, which
        cost a fifth of a small head's step."""
        if self.workers > 0 or not self.train_set.stored:
            return self.train_dataloader()
        return BatchesHere(self._new_sampler(), WholeBatches(self.train_set), CovariateCollate(self.covariates))

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        if self.trainer is not None and self.trainer.training and self.sampler is not None:
            self.sampler.check_next(divmod(self.trainer.global_step, len(self.sampler)))
        return batch

    def val_dataloader(self) -> DataLoader:
        size = max(2, self.batch_size)
        if self.val_set.stored:  # feature mode: each batch's rows read at once
            batches = BatchSampler(SequentialSampler(range(len(self.val_set))), size, drop_last=False)
            return DataLoader(WholeBatches(self.val_set), sampler=batches, batch_size=None, collate_fn=as_read,
                              num_workers=self.workers, worker_init_fn=ignore_sigint)
        return DataLoader(self.val_set, batch_size=size, collate_fn=collate_trials, num_workers=self.workers,
                          worker_init_fn=ignore_sigint)
