"""Embedding media files with a trained checkpoint, in batches, with an on-disk cache keyed by each file.

``Embedder`` turns voice files into V and face files into the mapped F (or the teacher's T);
``cached_embeddings`` keeps what it computed in an ``.npz`` beside the run, so a second pass over the same
files (``evaluate`` after ``backend fit``) costs no encoder call. ``FeatureEmbedder`` reads feature stores, which
are that cache already: its embeddings are not written again (at VoxCeleb1's size a second copy cost more, in
stat calls and hundreds of MB written, than applying the heads to the stored rows).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from voxface.errors import ConfigError, MediaError
from voxface.features import FeatureStore, feature_stores
from voxface.features.extract import pad_waves
from voxface.media.audio import read_voice
from voxface.media.cache import file_size, file_stamp, save_npz_atomic
from voxface.media.faces import face_to_tensor, read_face
from voxface.methods import Method
from voxface.training.config import TrainConfig


def store_key(path: str | Path, root: Path, cwd: str | None = None) -> str | None:
    """A file's key in a feature store whose keys are relative to ``root`` (resolved), or None outside it. A path
    under ``root`` as written is taken as it is; only others are resolved (symbolic links, ``..``), since resolving
    every path of a benchmark's lists cost a second per evaluation. ``cwd``: the working folder, for callers that
    key many relative paths (asking the system for it per path cost seconds at VoxCeleb1's size)."""
    text = os.fspath(path)
    if not os.path.isabs(text):
        text = os.path.join(cwd if cwd is not None else os.getcwd(), text)
    if f"{os.sep}." in text or f"{os.sep}{os.sep}" in text:  # '.' or '..' parts, doubled separators
        text = os.path.normpath(text)
    prefix = f"{root}{os.sep}"
    if text.startswith(prefix) and f"{os.sep}..{os.sep}" not in text:
        return text[len(prefix):].replace(os.sep, "/")  # strings only: it runs for each of 450,000 files
    try:
        return Path(path).resolve().relative_to(root).as_posix()
    except ValueError:
        return None


def store_rows(store: FeatureStore, paths: list, root: Path) -> np.ndarray:
    """int64 ``(len(paths),)``: each file's row in ``store`` (keys relative to ``root``), -1 where the store lacks it
    or could not read it."""
    cwd = os.getcwd()
    return store.rows(key if (key := store_key(path, root, cwd)) is not None else "" for path in paths)


class _Files(Dataset):
    def __init__(self, paths: list[Path], kind: str, size: int, crop: float | None) -> None:
        self.paths, self.kind, self.size, self.crop = paths, kind, size, crop

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        try:
            if self.kind == "voice":
                return index, torch.from_numpy(read_voice(self.paths[index], self.crop, None)), ""
            return index, face_to_tensor(read_face(self.paths[index], self.size)), ""
        except MediaError as err:
            return index, None, str(err)


def _collate(items):
    return items


class Embedder:
    """Embeds files in batches: ``kind`` "voice" (V), "face" (the mapped F) or "teacher" (the teacher's T). A face
    pass keeps its T as a by-product, so asking for the same files' T next costs no encoder call. Counts its
    encoder calls (tests check that each file is embedded once). ``workers=None``: loader processes only beside
    a GPU, since on a CPU they take the cores the encoder needs (2 workers halve the voice rate on 2 cores,
    BENCHMARKS.md)."""

    def __init__(self, model: Method, batch_size: int = 32, workers: int | None = None,
                 crop_seconds: float | None = None, teacher: tuple[FeatureStore, Path] | None = None) -> None:
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if workers is None:
            workers = 2 if self.device.type == "cuda" else 0
        self.model, self.batch_size, self.workers, self.crop = model, batch_size, workers, crop_seconds
        self.model.to(self.device).eval()
        self.encoded = {"voice": 0, "face": 0, "teacher": 0}
        self._teacher_of: dict[Path, np.ndarray] = {}  # T of the faces embedded so far
        self._stored_teacher = teacher  # (store of the frozen teacher's T, the root its keys are relative to)

    def _from_teacher_store(self, paths: list[Path]) -> dict[Path, np.ndarray]:
        """T of those of ``paths`` the run's teacher store holds (``teacher_store``), kept for later passes."""
        if self._stored_teacher is None or not paths:
            return {}
        store, root = self._stored_teacher
        rows = store_rows(store, paths, root)
        held = np.flatnonzero(rows >= 0)
        if not len(held):
            return {}
        vectors = store.take(rows[held])
        found = {paths[i]: vector for i, vector in zip(held, vectors, strict=True)}
        self._teacher_of.update(found)
        return found

    @torch.no_grad()
    def embed(self, paths: list[Path], kind: str) -> tuple[dict[Path, np.ndarray], dict[Path, str]]:
        embeddings, errors = {}, {}
        if kind == "teacher":
            embeddings = {p: self._teacher_of[p] for p in paths if p in self._teacher_of}
            paths = [p for p in paths if p not in embeddings]
        if kind in ("face", "teacher") and (stored := self._from_teacher_store(paths)):
            # the frozen teacher's T as the run's teacher store holds it: the face encoder is not called again
            teacher = torch.from_numpy(np.stack(list(stored.values()))).to(self.device)
            out = self.model.embed_face(features=teacher) if kind == "face" else teacher
            embeddings.update(zip(stored, out.float().cpu().numpy(), strict=True))
            paths = [p for p in paths if p not in stored]
        if kind == "voice" and self.crop is None:  # similar lengths in a batch: little padding to encode
            paths = sorted(paths, key=file_size)
        loader = DataLoader(_Files(paths, "voice" if kind == "voice" else "face", self.model.face_size, self.crop),
                            batch_size=self.batch_size, num_workers=self.workers, collate_fn=_collate)
        for items in loader:
            good = [(i, x) for i, x, error in items if x is not None]
            errors.update({paths[i]: error for i, x, error in items if x is None})
            if not good:
                continue
            if kind in ("face", "teacher"):
                teacher = self.model.encode_face(torch.stack([x for _, x in good]).to(self.device))
                for (i, _), vector in zip(good, teacher.float().cpu().numpy(), strict=True):
                    self._teacher_of[paths[i]] = vector
                out = self.model.embed_face(features=teacher) if kind == "face" else teacher
            else:
                wave, lengths = pad_waves([x for _, x in good])
                out = self.model.embed_voice(wave.to(self.device),
                                             lengths.to(self.device) if lengths is not None else None)
            self.encoded[kind] += len(good)
            for (i, _), vector in zip(good, out.float().cpu().numpy(), strict=True):
                embeddings[paths[i]] = vector
        return embeddings, errors


class FeatureEmbedder:
    """``Embedder``'s interface over feature stores (feature mode): the method's heads applied to what its frozen
    encoders stored for each file (``features/``), no media read. ``root``: the data root the stores' keys are
    relative to. A file missing from its store, or unreadable when the store was made, is an error entry."""

    def __init__(self, model: Method, stores: dict[str, FeatureStore], root: str | Path,
                 batch_size: int = 4096) -> None:
        self.device = torch.device("cpu")
        self.model, self.stores, self.batch_size = model.to(self.device).eval(), stores, batch_size
        self.root = Path(root).resolve()
        self.encoded = {"voice": 0, "face": 0, "teacher": 0}  # rows read from the stores

    @torch.no_grad()
    def embed(self, paths: list[Path], kind: str) -> tuple[dict[Path, np.ndarray], dict[Path, str]]:
        store = self.stores["voice" if kind == "voice" else "face"]
        rows = store_rows(store, paths, self.root)
        errors = {}
        if (rows < 0).any():
            unreadable, cwd = store.unreadable, os.getcwd()
            for i in np.flatnonzero(rows < 0):
                path = paths[i]
                key = store_key(path, self.root, cwd)
                why = unreadable.get(key) if key is not None else None
                errors[path] = (f"{path}: unreadable when feature store {store.path} was made ({why})" if why
                                else f"{path}: not in feature store {store.path}")
        found = np.flatnonzero(rows >= 0)
        found = found[np.argsort(rows[found], kind="stable")]  # read in the store's order: its file front to back
        embeddings = {}
        for start in range(0, len(found), self.batch_size):
            part = found[start:start + self.batch_size]
            stored = torch.from_numpy(store.take(rows[part]))
            out = (stored if kind == "teacher" else self.model.embed_voice(features=stored) if kind == "voice"
                   else self.model.embed_face(features=stored))
            embeddings.update(zip((paths[i] for i in part), out.float().numpy(), strict=True))
            self.encoded[kind] += len(part)
        return {path: embeddings[path] for path in paths if path in embeddings}, errors  # in the order asked


def make_embedder(model: Method, config: TrainConfig, data: str | Path, from_features: bool | None = None,
                  batch_size: int = 32, workers: int | None = None,
                  crop_seconds: float | None = None) -> Embedder | FeatureEmbedder:
    """The embedder for an evaluation: from the run's feature stores when it trained on them (``from_features``
    None) or when asked (True), else from media with the checkpoint's encoders. Raises ``ConfigError`` when stored
    features are asked of a media run or with a voice crop (stores hold what they were made with)."""
    if from_features is None:
        from_features = config.feature_mode
    if not from_features:
        return Embedder(model, batch_size, workers, crop_seconds, teacher_store(model, config))
    if not config.feature_mode:
        raise ConfigError("this run trained on media, not on feature stores (no features: in its config); "
                          "evaluate it on media")
    if crop_seconds is not None:
        raise ConfigError("--crop re-embeds voices from media; stored features hold what they were made with: "
                          "evaluate with --media to crop")
    return FeatureEmbedder(model, feature_stores(config), data)


def teacher_store(model: Method, config: TrainConfig) -> tuple[FeatureStore, Path] | None:
    """The run's teacher cache (``training/teacher_cache.py``: a feature store of its frozen face teacher's T), and
    the root its keys are relative to, when it still matches the checkpoint: the teacher was frozen, its weights
    file is where the run recorded it, unchanged (the store is named by and records its SHA-256). None otherwise:
    faces are then encoded from media."""
    from voxface.features import weights_sha256
    from voxface.features.store import FeaturesError

    weights = Path(config.face.weights) if config.face.weights else None
    if not config.face.frozen or not config.face.cache or model.face_encoder is None or weights is None \
            or not weights.is_file():
        return None
    digest = weights_sha256(weights)
    folder = Path(config.face.cache_dir or Path(config.trainer.out) / "teacher_cache") / f"teacher_{digest[:16]}"
    try:
        store = FeatureStore.open(folder, {"modality": "face", "weights_sha256": digest})
    except FeaturesError:
        return None
    return store, Path(store.meta["root"])


def cached_embeddings(embedder: Embedder, paths: list[Path], kind: str, cache_file: Path | None):
    """Embeddings of ``paths`` with an on-disk cache (none for a ``FeatureEmbedder``: its stores are the cache);
    returns (embeddings, unreadable files with reasons)."""
    if isinstance(embedder, FeatureEmbedder):
        return embedder.embed(paths, kind)
    stored: dict[str, tuple[str, np.ndarray]] = {}
    if cache_file is not None and cache_file.is_file():
        data = np.load(cache_file, allow_pickle=False)
        stored = {str(p): (str(s), e)
                  for p, s, e in zip(data["paths"], data["stamps"], data["embeddings"], strict=True)}
    result, todo = {}, []
    for path in paths:
        hit = stored.get(str(path))
        if hit is not None and hit[0] == file_stamp(path):
            result[path] = hit[1]
        else:
            todo.append(path)
    fresh, errors = embedder.embed(todo, kind) if todo else ({}, {})
    result.update(fresh)
    if cache_file is not None and fresh:
        for path, vector in fresh.items():
            stored[str(path)] = (file_stamp(path), vector)
        names = sorted(stored)
        save_npz_atomic(cache_file, paths=np.array(names), stamps=np.array([stored[n][0] for n in names]),
                        embeddings=np.stack([stored[n][1] for n in names]))
    return result, errors
