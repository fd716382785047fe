"""A feature store: one encoder's output for every file of a data root, on disk, readable with numpy alone.

A store is a folder (format ``voxface-features/1``):

- ``meta.json``: what made it: ``modality``, ``encoder`` (its registered name), ``record`` (``encoder_record``:
  architecture and front end), ``weights`` and ``weights_sha256``, ``crop_seconds`` (None: whole clips), ``views``,
  ``dim``, ``dtype``, ``count``, ``files_sha256`` (of every key with its file's size and time: which files were
  embedded), ``complete`` and the ``voxface`` version;
- ``keys.txt``: one file path per line, relative to the data root, UTF-8, sorted; row ``i`` of the arrays;
- ``embeddings.npy``: float32 ``(count, views, dim)``; a face has two views, the picture and its mirror image
  (training's random flip picks one, as it would flip the picture), a voice one;
- ``valid.npy``: bool ``(count,)``, False for a file that could not be read (its row is zeros), and
  ``unreadable.txt``: ``key<TAB>reason`` for each of them.

No pickle anywhere: ``np.load(folder / "embeddings.npy", mmap_mode="r", allow_pickle=False)`` reads it. While it is
being written, ``progress-<rank>.json`` records the chunks of rows each process has finished, so a stopped
extraction continues where it stopped (``extract.py``).

Example:
    >>> store = FeatureStore.open("features/voices")  # doctest: +SKIP
    >>> store.vectors(["wav/id10001/1zcIwhmdeo4/00001.wav"]).shape  # doctest: +SKIP
    (1, 192)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from voxface import __version__
from voxface.errors import FeaturesError

FORMAT = "voxface-features/1"
VIEWS = {"face": ("plain", "mirrored"), "voice": ("plain",)}
META, KEYS, EMBEDDINGS, VALID, UNREADABLE = "meta.json", "keys.txt", "embeddings.npy", "valid.npy", "unreadable.txt"
# What a caller may require of a store, and how a mismatch is named.
CHECKED = {"encoder": "encoder", "weights_sha256": "weights (SHA-256)", "crop_seconds": "crop seconds",
           "modality": "modality", "files_sha256": "files (paths, sizes, times)"}


def write_json_atomic(path: Path, value: Any) -> None:
    """Write JSON to a temporary file and rename it: a reader never sees half a file."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(value, indent=1))
    os.replace(temporary, path)


def read_meta(path: str | Path) -> dict[str, Any]:
    """``meta.json`` of the store at ``path``; FeaturesError when the folder is not a store."""
    folder = Path(path)
    if not folder.is_dir():
        raise FeaturesError(f"feature store {folder} does not exist (make one with voxface extract)")
    try:
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FeaturesError(f"{folder} is not a feature store: it has no {META}") from None
    except (ValueError, OSError) as err:
        raise FeaturesError(f"{folder / META} cannot be read as JSON ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise FeaturesError(f"{folder} is not a {FORMAT} feature store (format {found!r})")
    return meta


def mismatches(meta: dict[str, Any], expect: Mapping[str, Any]) -> list[str]:
    """The expected fields a store's meta differs in, each as ``name: stored X, expected Y``."""
    return [f"{CHECKED.get(key, key)}: stored {_short(meta.get(key))}, expected {_short(value)}"
            for key, value in expect.items() if meta.get(key) != value]


def _short(value: Any) -> str:
    return f"{value[:12]}..." if isinstance(value, str) and len(value) == 64 else repr(value)


class FeatureStore(Mapping[str, np.ndarray]):
    """A finished store, memory-mapped (module docstring). As a mapping: key -> ``(views, dim)`` rows of the
    readable files only (``in`` is False for an unreadable one); ``vectors`` picks a view of many keys at once.

    Pickling reopens it by path (a loader worker maps the same file instead of copying the array).
    """

    def __init__(self, path: Path, meta: dict[str, Any], keys: list[str], embeddings: np.ndarray,
                 valid: np.ndarray) -> None:
        self.path, self.meta, self.keys = path, meta, keys
        # valid as a plain array (a memory map's per-element reads are slow: training tests one per item)
        self.embeddings, self.valid = embeddings, np.asarray(valid)
        self._rows = {key: row for row, key in enumerate(keys)}

    @classmethod
    def open(cls, path: str | Path, expect: Mapping[str, Any] | None = None) -> FeatureStore:
        """Open a finished store. ``expect``: meta fields it must have (``CHECKED``: encoder, weights_sha256,
        crop_seconds, modality, files_sha256). Raises ``FeaturesError`` for a folder that is not a store, one
        not finished, and one that differs from ``expect``."""
        folder = Path(path)
        meta = read_meta(folder)
        if not meta.get("complete"):
            raise FeaturesError(f"feature store {folder} is unfinished (extraction stopped); resume with voxface "
                                f"extract --encoder {meta.get('encoder')} --weights {meta.get('weights')} "
                                f"--data {meta.get('root')} --out {folder}")
        if expect and (differ := mismatches(meta, expect)):
            raise FeaturesError(f"feature store {folder} was made otherwise ({'; '.join(differ)}); extract "
                                "these features again into another folder")
        try:
            keys = read_keys(folder)
            embeddings = np.load(folder / EMBEDDINGS, mmap_mode="r", allow_pickle=False)
            valid = np.load(folder / VALID, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as err:
            raise FeaturesError(f"feature store {folder} is damaged ({err}); extract it again") from None
        shape = (meta["count"], len(meta["views"]), meta["dim"])
        if len(keys) != meta["count"] or embeddings.shape != shape or valid.shape != (meta["count"],):
            raise FeaturesError(f"feature store {folder} is damaged: {len(keys)} keys, embeddings "
                                f"{embeddings.shape}, valid {valid.shape}, meta says {shape}; extract it again")
        return cls(folder, meta, keys, embeddings, valid)

    def __reduce__(self):
        return (FeatureStore.open, (self.path,))

    @property
    def dim(self) -> int:
        return int(self.meta["dim"])

    @property
    def unreadable(self) -> dict[str, str]:
        """``{key: reason}`` of the files that could not be read."""
        lines = (self.path / UNREADABLE).read_text(encoding="utf-8").splitlines()
        return dict(line.split("\t", 1) for line in lines if line)

    def index(self, key: str) -> int:
        """The row of ``key`` (readable or not). KeyError naming the store when it has none."""
        try:
            return self._rows[key]
        except KeyError:
            raise KeyError(f"{key!r} is not in feature store {self.path}") from None

    def __contains__(self, key: object) -> bool:
        row = self._rows.get(key)  # type: ignore[arg-type]
        return row is not None and bool(self.valid[row])

    def __getitem__(self, key: str) -> np.ndarray:
        """The ``(views, dim)`` rows of a readable file; KeyError for one missing or unreadable."""
        row = self.index(key)
        if not self.valid[row]:
            raise KeyError(f"{key!r} could not be read when feature store {self.path} was made")
        return self.embeddings[row]

    def __iter__(self) -> Iterator[str]:
        return (key for key, ok in zip(self.keys, self.valid, strict=True) if ok)

    def __len__(self) -> int:
        return int(self.valid.sum())

    def rows(self, keys: Iterable[str]) -> np.ndarray:
        """int64 ``(len(keys),)``: the row of each key, -1 for a key the store lacks or could not read (those for which
        ``key in store`` is False)."""
        rows = np.fromiter((self._rows.get(key, -1) for key in keys), dtype=np.int64)
        known = rows >= 0
        rows[known] = np.where(self.valid[rows[known]], rows[known], -1)
        return rows

    def vectors(self, keys: Iterable[str], view: int = 0) -> np.ndarray:
        """float32 ``(len(keys), dim)``: view ``view`` (0 plain, 1 mirrored for faces) of each key, in order.
        KeyError for a key the store lacks or could not read."""
        rows = np.fromiter((self.index(key) for key in keys), dtype=np.int64)
        if len(rows) and not self.valid[rows].all():
            bad = [self.keys[r] for r in rows[~self.valid[rows]]]
            raise KeyError(f"{len(bad)} of the keys could not be read when {self.path} was made, e.g. {bad[0]!r}")
        return self.take(rows, view)

    def take(self, rows: np.ndarray, views: np.ndarray | int = 0) -> np.ndarray:
        """float32 ``(len(rows), dim)``: rows ``rows`` (from ``rows``, all readable), view ``views`` of each (or
        ``views[i]`` of the i-th)."""
        return np.asarray(self.embeddings[rows, views], dtype=np.float32)


def read_keys(folder: Path) -> list[str]:
    return (folder / KEYS).read_text(encoding="utf-8").splitlines()


def create_store(folder: Path, meta: dict[str, Any], keys: list[str]) -> None:
    """Lay out an empty, unfinished store: keys, zeroed arrays preallocated on disk, ``complete`` False."""
    bad = next((k for k in keys if "\n" in k or "\t" in k or "\r" in k), None)
    if bad is not None:
        raise FeaturesError(f"file name {bad!r} holds a tab or line break: a feature store cannot key it; rename it")
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("progress-*.json"):
        stale.unlink()
    (folder / KEYS).write_text("".join(f"{key}\n" for key in keys), encoding="utf-8")
    shape = (len(keys), len(meta["views"]), meta["dim"])
    np.lib.format.open_memmap(folder / EMBEDDINGS, mode="w+", dtype=np.float32, shape=shape).flush()
    np.lib.format.open_memmap(folder / VALID, mode="w+", dtype=np.bool_, shape=(len(keys),)).flush()
    (folder / UNREADABLE).write_text("", encoding="utf-8")
    write_json_atomic(folder / META, {**meta, "format": FORMAT, "count": len(keys), "dtype": "float32",
                                      "complete": False, "voxface": __version__})


class Progress:
    """One process's finished chunks of rows and the unreadable files in them: ``progress-<rank>.json``,
    rewritten atomically after each chunk (its rows are flushed to disk first)."""

    def __init__(self, folder: Path, rank: int) -> None:
        self.file = folder / f"progress-{rank}.json"
        saved = json.loads(self.file.read_text()) if self.file.is_file() else {}
        self.done: set[int] = set(saved.get("done", []))
        self.rows: int = saved.get("rows", 0)
        self.unreadable: dict[str, str] = saved.get("unreadable", {})

    def record(self, chunk: int, rows: int, unreadable: dict[str, str]) -> None:
        self.done.add(chunk)
        self.rows += rows
        self.unreadable.update(unreadable)
        write_json_atomic(self.file, {"done": sorted(self.done), "rows": self.rows, "unreadable": self.unreadable})

    @staticmethod
    def merged(folder: Path) -> tuple[set[int], dict[str, str]]:
        """Chunks finished by any process so far, and every unreadable file found in them."""
        done: set[int] = set()
        unreadable: dict[str, str] = {}
        for file in sorted(folder.glob("progress-*.json")):
            saved = json.loads(file.read_text())
            done.update(saved.get("done", []))
            unreadable.update(saved.get("unreadable", {}))
        return done, unreadable


def finish_store(folder: Path) -> None:
    """Mark a store whose every chunk is done as complete: unreadable.txt written, progress files removed."""
    meta = read_meta(folder)
    _, unreadable = Progress.merged(folder)
    (folder / UNREADABLE).write_text("".join(f"{key}\t{' '.join(reason.split())}\n"
                                             for key, reason in sorted(unreadable.items())), encoding="utf-8")
    valid = np.load(folder / VALID, mmap_mode="r", allow_pickle=False)
    write_json_atomic(folder / META, {**meta, "complete": True, "readable": int(valid.sum())})
    for file in folder.glob("progress-*.json"):
        file.unlink()


class StoreView(Mapping[str, np.ndarray]):
    """A store seen from one media folder: ``{path relative to the face (or audio) root: (views, D) float32}`` of
    every readable file, for keys that begin with ``prefix`` (``unzippedFaces/``, ``wav/``) in the store. What
    training's datasets take as a face (teacher) or voice cache. Rows are copies, so torch takes them as they are."""

    def __init__(self, store: FeatureStore, prefix: str, precision: type | None = None) -> None:
        """``precision``: each row rounded to this dtype and back to float32 (the teacher cache: float16)."""
        self.store, self.prefix, self.precision = store, prefix, precision

    def __contains__(self, relative: object) -> bool:
        return isinstance(relative, str) and f"{self.prefix}{relative}" in self.store

    def __getitem__(self, relative: str) -> np.ndarray:
        row = np.array(self.store[f"{self.prefix}{relative}"])
        return row if self.precision is None else row.astype(self.precision).astype(np.float32)

    def rows(self, relatives: Iterable[str]) -> np.ndarray:
        """int64 ``(len(relatives),)``: each file's row in the store, -1 for one it lacks or could not read (``in`` is
        False); ``take`` reads them."""
        return self.store.rows(f"{self.prefix}{r}" for r in relatives)

    def take(self, rows: np.ndarray, views: np.ndarray | None = None) -> np.ndarray:
        """float32 ``(len(rows), D)``: the embeddings of store rows ``rows`` (from ``rows``, all of them readable),
        view 0 of each or ``views[i]`` of the i-th, each as ``self[relative][view]`` gives it."""
        stacked = self.store.take(rows, 0 if views is None else views)
        return stacked if self.precision is None else stacked.astype(self.precision).astype(np.float32)

    def stack(self, relatives: Iterable[str], views: Iterable[int] | None = None) -> np.ndarray:
        """float32 ``(len(relatives), D)``: the rows of many files at once (view 0 of each, or ``views[i]`` of the
        i-th), each as ``self[relative][view]`` gives it. KeyError for a file the store lacks or could not read."""
        store = self.store
        rows = np.fromiter((store.index(f"{self.prefix}{r}") for r in relatives), dtype=np.int64)
        if len(rows) and not store.valid[rows].all():
            bad = store.keys[int(rows[~store.valid[rows]][0])]
            raise KeyError(f"{bad!r} could not be read when feature store {store.path} was made")
        return self.take(rows, None if views is None else np.fromiter(views, dtype=np.int64))

    def __iter__(self) -> Iterator[str]:
        return (key[len(self.prefix):] for key in self.store if key.startswith(self.prefix))

    def __len__(self) -> int:
        return sum(1 for _ in self)
