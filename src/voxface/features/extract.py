"""``voxface extract``: embed every voice (or face) file of a data root once into a feature store (``store.py``).

Rows follow the sorted keys and are done in chunks of ``chunk_rows``; inside a chunk, voices of similar length share
a batch (little padding to encode: whole clips of VoxCeleb1 last 4 to 145 s). After each chunk its rows are flushed
and the chunk recorded (``Progress``), so a stopped run continues at the first unfinished chunk; a finished store
made the same way is reused, one made otherwise is refused. With ``devices`` > 1 Lightning's ``Trainer.predict``
starts a process per GPU (on a machine without one, per share of the CPU cores, talking through gloo), each taking
every ``devices``-th unfinished chunk and writing its rows into the same memory-mapped file; with one device, the
calling process does all.

A face is stored as two views, the picture and its mirror image, so that training's random flip works on stored
features (``training/teacher_cache.py``, the frozen face teacher, is this with the faces training uses).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from voxface.encoders.registry import (
    ENCODERS,
    build_face_encoder,
    build_voice_encoder,
    encoder_record,
    weights_provenance,
)
from voxface.errors import ConfigError, FeaturesError, MediaError, WeightsError
from voxface.features.store import (
    EMBEDDINGS,
    META,
    VALID,
    VIEWS,
    FeatureStore,
    Progress,
    create_store,
    finish_store,
    mismatches,
    read_keys,
    read_meta,
)
from voxface.formats import AUDIO_SUFFIXES, IMAGE_SUFFIXES
from voxface.media.audio import check_crop, read_voice
from voxface.media.cache import file_size, file_stamp
from voxface.media.faces import face_to_tensor, read_face
from voxface.protocol.layout import AUDIO_DIR, FACES_DIR, DataRoots
from voxface.protocol.lists import SPLIT_NAMES, load_protocol

log = logging.getLogger("voxface")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")  # the weight files of a HuggingFace folder


# ---------------------------------------------------------------- what is embedded, and with what


def weights_sha256(weights: str | Path) -> str:
    """SHA-256 of a weights file; of a model folder, over its weight files' names and bytes (not its configs).
    Raises ``WeightsError`` when there is nothing to digest."""
    path = Path(weights)
    files = ([path] if path.is_file() else sorted(f for f in path.rglob("*") if f.is_file()
                                                   and f.suffix in WEIGHT_SUFFIXES) if path.is_dir() else [])
    if not files:
        raise WeightsError(f"weights folder {path} holds no weight file ({', '.join(WEIGHT_SUFFIXES)})"
                           if path.is_dir() else f"weights file {path} does not exist")
    digest = hashlib.sha256()
    for file in files:
        if path.is_dir():
            digest.update(f"{file.relative_to(path).as_posix()}\n".encode())
        with file.open("rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()


def media_folder(modality: str, root: str | Path, folder_name: str) -> Path:
    """``root / folder_name``, the folder of ``modality``'s files; ``MediaError`` where there is none."""
    folder = Path(root) / folder_name
    if not folder.is_dir():
        raise MediaError(f"data root {root} has no {folder_name}/ folder, where its {modality} files should be")
    return folder


def data_files(modality: str, root: str | Path, lists: str | Path | None = None, audio_dir: str = AUDIO_DIR,
               faces_dir: str = FACES_DIR) -> list[str]:
    """Sorted keys (paths relative to ``root``, with ``/``) of the ``modality`` files to embed: every voice under
    ``root/audio_dir`` (every face under ``root/faces_dir``), or with ``lists`` (``"voxceleb1"`` or a protocol
    folder) only those of the identities its train, val and test splits name. Raises ``MediaError`` for a missing
    folder or one without such files."""
    root = Path(root)
    folder_name = audio_dir if modality == "voice" else faces_dir
    folder = media_folder(modality, root, folder_name)
    if lists is None:
        suffixes = AUDIO_SUFFIXES if modality == "voice" else IMAGE_SUFFIXES
        # os.walk, not Path.rglob + is_file: the directory entries say what is a file without a stat or a path
        # object per file (34 s against a few for VoxCeleb1's 630,000 face frames)
        # keys as the folder's name plus the path below it (root "." makes the folder plain "wav", so no cut by
        # the root's own length)
        head, below = Path(folder_name).as_posix(), len(str(folder)) + 1
        keys = [f"{head}/{os.path.join(top, name)[below:]}".replace(os.sep, "/")
                for top, _, names in os.walk(folder, followlinks=True) for name in names
                if os.path.splitext(name)[1].lower() in suffixes]
    else:
        protocol, roots = load_protocol(lists), DataRoots.from_root(root, audio_dir, faces_dir)
        keys = []
        for split in SPLIT_NAMES:
            for ident in protocol.identities_in_split(split):
                videos = roots.voice_videos(ident.vox_id) if modality == "voice" else roots.face_videos(ident.name)
                keys += [f"{Path(folder_name).as_posix()}/{rel}" for files in videos.values() for rel in files]
    if not keys:
        raise MediaError(f"no {modality} files under {folder}" + (f" for the identities of {lists}" if lists else ""))
    return sorted(set(keys))


def files_sha256(root: Path, keys: list[str]) -> str:
    """SHA-256 over every key with its file's size and modification time: which files a store embedded."""
    digest = hashlib.sha256()
    for key in keys:
        digest.update(f"{key}\t{file_stamp(root / key)}\n".encode())
    return digest.hexdigest()


def pad_waves(waves: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(B, longest)`` zero-padded batch of 1-D waveforms and their lengths; lengths None when all are equal (an
    encoder then needs no mask)."""
    lengths = torch.tensor([len(w) for w in waves])
    wave = torch.zeros(len(waves), int(lengths.max()))
    for row, w in enumerate(waves):
        wave[row, : len(w)] = w
    return wave, lengths if bool((lengths < wave.shape[1]).any()) else None


# ---------------------------------------------------------------- the work: batches of rows, in chunks


@dataclass(frozen=True)
class Batch:
    chunk: int
    rows: tuple[int, ...]
    closes_chunk: bool  # the chunk's last batch


def plan_batches(chunks: list[int], chunk_rows: int, count: int, batch_size: int,
                 size_of: Callable[[int], int] | None) -> list[Batch]:
    """The batches of ``chunks``, in order; with ``size_of`` (file bytes by row) a chunk's rows are sorted by size
    first, so that a batch holds clips of similar length."""
    batches = []
    for chunk in chunks:
        rows = list(range(chunk * chunk_rows, min(count, (chunk + 1) * chunk_rows)))
        if size_of is not None:
            rows.sort(key=size_of)
        for start in range(0, len(rows), batch_size):
            batches.append(Batch(chunk, tuple(rows[start:start + batch_size]), start + batch_size >= len(rows)))
    return batches


class _Batches(Dataset):
    """Batch ``i`` of a plan, read and made into tensors (in a loader worker when there are workers)."""

    def __init__(self, root: Path, keys: list[str], batches: list[Batch], modality: str, size: int,
                 crop: float | None) -> None:
        self.root, self.keys, self.batches = root, keys, batches
        self.modality, self.size, self.crop = modality, size, crop

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> dict[str, Any]:
        batch = self.batches[index]
        good, inputs, errors = [], [], {}
        for row in batch.rows:
            path = self.root / self.keys[row]
            try:
                if self.modality == "voice":
                    inputs.append(torch.from_numpy(read_voice(path, self.crop, None)))
                else:
                    face = read_face(path, self.size)
                    inputs.append(torch.stack([face_to_tensor(face), face_to_tensor(face, flip=True)]))
                good.append(row)
            except MediaError as err:
                errors[self.keys[row]] = str(err)
        item: dict[str, Any] = {"chunk": batch.chunk, "closes_chunk": batch.closes_chunk,
                                "rows": torch.tensor(good, dtype=torch.long), "errors": errors,
                                "count": len(batch.rows)}
        if good and self.modality == "voice":
            item["wave"], item["lengths"] = pad_waves(inputs)
        elif good:
            item["faces"] = torch.stack(inputs)  # (n, 2, 3, S, S)
        return item


def encode(encoder: nn.Module, item: dict[str, Any], device: torch.device) -> np.ndarray | None:
    """float32 ``(n, views, dim)`` of one ``_Batches`` item's readable files; None when none was readable."""
    if not len(item["rows"]):
        return None
    if "wave" in item:
        lengths = item["lengths"]
        out = encoder(item["wave"].to(device), lengths.to(device) if lengths is not None else None)[:, None]
    else:
        faces = item["faces"].to(device)
        out = encoder(faces.flatten(0, 1)).view(len(faces), faces.shape[1], -1)
    return out.float().cpu().numpy()


class _Writer:
    """Writes one process's rows into the store's memory-mapped arrays and records each finished chunk."""

    def __init__(self, folder: Path, rank: int) -> None:
        self.embeddings = np.load(folder / EMBEDDINGS, mmap_mode="r+", allow_pickle=False)
        self.valid = np.load(folder / VALID, mmap_mode="r+", allow_pickle=False)
        self.progress = Progress(folder, rank)
        self.rows, self.unreadable = 0, {}

    def write(self, item: dict[str, Any], vectors: np.ndarray | None) -> None:
        rows = item["rows"].numpy()
        if len(rows):
            self.embeddings[rows] = vectors
            self.valid[rows] = True
        for reason in item["errors"].values():
            log.warning("skipping bad file: %s", reason)
        self.unreadable.update(item["errors"])
        self.rows += item["count"]
        if item["closes_chunk"]:  # rows on disk first, then the record that says they are there
            self.embeddings.flush()
            self.valid.flush()
            self.progress.record(item["chunk"], self.rows, self.unreadable)
            self.rows, self.unreadable = 0, {}


@dataclass
class _Job:
    folder: Path
    root: Path
    keys: list[str]
    modality: str
    face_size: int
    crop: float | None
    batch_size: int
    chunk_rows: int
    workers: int

    def batches(self, rank: int, world: int) -> list[Batch]:
        """This process's share of the unfinished chunks (read from disk: call it before any process writes)."""
        done, _ = Progress.merged(self.folder)
        todo = [c for c in range(-(-len(self.keys) // self.chunk_rows)) if c not in done]
        size_of = ((lambda row: file_size(self.root / self.keys[row]))
                   if self.modality == "voice" and self.crop is None else None)
        return plan_batches(todo[rank::world], self.chunk_rows, len(self.keys), self.batch_size, size_of)

    def loader(self, batches: list[Batch]) -> DataLoader:
        dataset = _Batches(self.root, self.keys, batches, self.modality, self.face_size, self.crop)
        return DataLoader(dataset, batch_size=None, num_workers=self.workers)

    def writer(self, rank: int) -> _Writer:
        """The writer of this process's rows."""
        return _Writer(self.folder, rank)

    def encode(self, encoder: nn.Module, item: dict[str, Any], device: torch.device) -> Any:
        return encode(encoder, item, device)

    def finish_if_done(self) -> bool:
        return _finish_if_done(self)


def _extractor(encoder: nn.Module, job: _Job) -> Any:
    """One rank of a multi-process extraction (``features/ranks.py``: Lightning imported there, where several
    processes extract, not by every command that reads a store)."""
    from voxface.features.ranks import Extractor

    return Extractor(encoder, job)


def _finish_if_done(job: _Job) -> bool:
    done, _ = Progress.merged(job.folder)
    if len(done) < -(-len(job.keys) // job.chunk_rows):
        return False
    finish_store(job.folder)
    return True


# ---------------------------------------------------------------- entry points


def extract_features(encoder_name: str, weights: str | Path, data_root: str | Path, out: str | Path,
                     lists: str | Path | None = None, crop_seconds: float | None = None, batch_size: int = 32,
                     devices: int | None = None, workers: int | None = None, chunk_rows: int = 1024,
                     audio_dir: str = AUDIO_DIR, faces_dir: str = FACES_DIR, progress: bool = True,
                     replace: bool = False) -> FeatureStore:
    """Embed every file of ``data_root`` of the encoder's modality (``data_files``) into the store ``out``.

    ``crop_seconds``: a centre crop of each voice (None: whole clips). ``devices``: GPUs to use, a process each
    (None: all there are); on a machine without a GPU, processes sharing the CPU cores (None: one). ``workers``:
    loader processes per device (None: 2 beside a GPU, else 0: on a CPU they take the cores the encoder needs).
    Raises ``ConfigError`` (unknown encoder, bad settings), ``WeightsError`` (weights that do not load),
    ``MediaError`` (no data), ``FeaturesError`` (``out`` holds something else, unless ``replace``: then it is made
    again).

    Example:
        >>> store = extract_features("iresnet", "backbone.pth", "voxsynth", "features/faces")  # doctest: +SKIP
        >>> store.vectors(store.keys[:2], view=1).shape  # mirrored views  # doctest: +SKIP
        (2, 512)
    """
    if encoder_name not in ENCODERS:
        raise ConfigError(f"unknown encoder {encoder_name!r}; registered: {', '.join(ENCODERS)}")
    check_crop(crop_seconds)
    if batch_size < 1 or chunk_rows < 1:
        raise ConfigError(f"batch size and chunk rows must be at least 1, got {batch_size} and {chunk_rows}")
    modality = ENCODERS[encoder_name].modality
    if crop_seconds is not None and modality == "face":
        raise ConfigError(f"crop applies to voices; {encoder_name} is a face encoder (leave the crop out)")
    gpus = torch.cuda.device_count()
    devices = devices if devices is not None else max(1, gpus)
    if devices < 1:
        raise ConfigError(f"devices must be at least 1, got {devices}")
    if gpus and devices > gpus:
        raise ConfigError(f"{devices} devices asked for, this machine has {gpus} GPU(s); ask for at most {gpus}")
    # The data folder and the weights first: a fault in either is said in a second, not after listing the files.
    media_folder(modality, data_root, audio_dir if modality == "voice" else faces_dir)
    encoder = (build_voice_encoder(encoder_name, weights) if modality == "voice"
               else build_face_encoder(encoder_name, weights))
    keys = data_files(modality, data_root, lists, audio_dir, faces_dir)
    digest = weights_sha256(weights)
    record = encoder_record(encoder_name, encoder, weights_provenance(encoder_name, weights))
    return extract_with(encoder, record, digest, data_root, keys, out, weights=weights, lists=lists,
                        crop_seconds=crop_seconds, batch_size=batch_size, devices=devices, workers=workers,
                        chunk_rows=chunk_rows, progress=progress, replace=replace)


def _holds(folder: Path, stored: dict[str, Any], expect: dict[str, Any], root: Path, keys: list[str]) -> bool:
    """Whether a finished store made by the same encoder and weights over this root holds every one of ``keys``, its
    files unchanged since (the digest of all the files it embedded, taken again)."""
    if not stored.get("complete") or stored.get("root") != str(root.resolve()):
        return False
    if mismatches(stored, {k: v for k, v in expect.items() if k != "files_sha256"}):
        return False
    held = read_keys(folder)
    return set(keys) <= set(held) and stored.get("files_sha256") == files_sha256(root, held)


def extract_with(encoder: nn.Module, record: dict[str, Any], weights_digest: str, data_root: str | Path,
                 keys: list[str], out: str | Path, weights: str | Path | None = None, lists: str | Path | None = None,
                 crop_seconds: float | None = None, batch_size: int = 32, devices: int = 1,
                 workers: int | None = None, chunk_rows: int = 1024, progress: bool = True,
                 replace: bool = False) -> FeatureStore:
    """``extract_features`` with an encoder already built (``record``: its ``encoder_record``) and the ``keys`` to
    embed. ``replace``: a store in ``out`` made otherwise is removed and made again (a cache) instead of refused."""
    folder, root = Path(out), Path(data_root)
    modality = "face" if record["front_end"].get("input") == "image" else "voice"
    meta = {"modality": modality, "encoder": record["name"], "record": record,
            "weights": str(Path(weights).resolve()) if weights else None, "weights_sha256": weights_digest,
            "crop_seconds": crop_seconds if modality == "voice" else None, "views": list(VIEWS[modality]),
            "dim": int(encoder.embedding_size), "root": str(root.resolve()),
            "lists": str(lists) if lists is not None else None, "files_sha256": files_sha256(root, keys)}
    expect = {key: meta[key] for key in ("modality", "encoder", "weights_sha256", "crop_seconds", "files_sha256")}
    launched = int(os.environ.get("LOCAL_RANK", "0")) > 0  # a process Lightning started: rank 0 made the store
    if (folder / META).is_file():
        stored = read_meta(folder)
        if differ := mismatches(stored, expect):
            if replace and _holds(folder, stored, expect, root, keys):  # a cache met by a store of more files
                log.info("reusing the finished feature store %s: it holds the %d files asked for", folder, len(keys))
                return FeatureStore.open(folder, {k: v for k, v in expect.items() if k != "files_sha256"})
            if not replace:
                raise FeaturesError(f"{folder} holds features made otherwise ({'; '.join(differ)}); choose another "
                                    "--out, or remove it to extract again")
            if not launched:
                log.info("feature store %s was made otherwise (%s): extracting again", folder, "; ".join(differ))
                shutil.rmtree(folder)
                create_store(folder, meta, keys)
        elif stored.get("complete"):
            log.info("reusing the finished feature store %s (%d files)", folder, stored["count"])
            return FeatureStore.open(folder, expect)
        else:
            done, _ = Progress.merged(folder)
            log.info("resuming feature store %s: %d of %d chunks done", folder, len(done), -(-len(keys) // chunk_rows))
    elif folder.exists() and not folder.is_dir():
        raise FeaturesError(f"{folder} is a file, not a folder; choose another --out")
    elif folder.exists() and any(folder.iterdir()):
        raise FeaturesError(f"{folder} exists and is not a feature store; choose another --out")
    elif not launched:
        create_store(folder, meta, keys)
    encoder.eval()  # gradients are off where it runs (inference mode)
    cuda = torch.cuda.is_available()
    job = _Job(folder, root, keys, modality, getattr(encoder, "input_size", 0), meta["crop_seconds"], batch_size,
               chunk_rows, workers if workers is not None else (2 if cuda else 0))
    if devices > 1 and not launched:  # every process needs a chunk of its own: fewer left, fewer processes
        done, _ = Progress.merged(folder)
        left = -(-len(keys) // chunk_rows) - len(done)
        if left < devices:
            log.info("%d chunk(s) of %d files left in %s: extracting with %d process(es), not %d", left, chunk_rows,
                     folder, max(1, left), devices)
            devices = max(1, left)
    if devices > 1:
        # Each rank takes its own chunks (_Job.batches): Lightning must not shard the loader again. Started processes
        # (spawn) run only the prediction, so any program may call this, not only a script Lightning can run again.
        import lightning as L

        trainer = L.Trainer(accelerator="gpu" if cuda else "cpu", devices=devices, strategy="ddp_spawn", logger=False,
                            use_distributed_sampler=False, enable_progress_bar=progress, enable_model_summary=False)
        trainer.predict(_extractor(encoder, job), return_predictions=False)
    else:
        _extract_here(encoder, job, torch.device("cuda" if cuda else "cpu"), progress)
    return FeatureStore.open(folder, expect)


@torch.inference_mode()
def _extract_here(encoder: nn.Module, job: _Job, device: torch.device, progress: bool) -> None:
    """One process: every unfinished chunk, in order."""
    from tqdm import tqdm

    encoder.to(device)
    batches = job.batches(0, 1)
    writer = _Writer(job.folder, 0)
    for item in tqdm(job.loader(batches), total=len(batches), desc=f"{job.modality} features", unit="batch",
                     disable=not progress):
        writer.write(item, encode(encoder, item, device))
    if not _finish_if_done(job):  # only when chunks were left out: a bug, not a user's doing
        raise FeaturesError(f"feature store {job.folder}: chunks are missing after extraction; run it again")


def feature_stores(config: Any) -> dict[str, FeatureStore]:
    """The ``{"face": store, "voice": store}`` a feature-mode training configuration names (``features:``), each
    checked to hold its modality made by the configured encoder from the configured weights (SHA-256);
    ``FeaturesError`` naming the store and what differs otherwise."""
    wanted = {"face": ("features.face", config.features.face, config.face.encoder, "face.weights",
                       config.face.weights),
              "voice": ("features.voice", config.features.voice, config.audio.encoder, "audio.weights",
                        config.audio.weights)}
    stores = {}
    for modality, (key, path, encoder, weights_key, weights) in wanted.items():
        try:
            stores[modality] = FeatureStore.open(path, {"modality": modality, "encoder": encoder,
                                                        "weights_sha256": weights_sha256(weights)})
        except FeaturesError as err:  # which settings of the config disagree with the store
            raise FeaturesError(f"{key}: {err} (this config's {weights_key}: {weights})") from None
    return stores
