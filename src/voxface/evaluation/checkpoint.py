"""Rebuild a trained method and its encoders from a ``voxface train`` checkpoint alone (no original weight files)."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import torch

import voxface
from voxface.encoders.loading import load_strict, read_weights
from voxface.encoders.registry import rebuild_encoder
from voxface.errors import WeightsError
from voxface.methods import LabelSpace, Method, Towers, method_class
from voxface.training.config import ENCODERS_KEY, TrainConfig, relocate
from voxface.typed import UnknownConfigKey

log = logging.getLogger("voxface")


def run_name(checkpoint: str | Path) -> str:
    """A run's name from its checkpoint: ``runs/demo/train/full/checkpoints/best.ckpt`` -> ``full``."""
    run = run_folder(checkpoint)
    return run.name if run is not None and run.name else Path(checkpoint).stem


def _another_version(path: str | Path, blob: dict[str, Any], what: str) -> WeightsError:
    written = blob.get("voxface_version")
    by = f"; it was written by voxface {written}" if written and written != voxface.__version__ else ""
    return WeightsError(f"{path} comes from another voxface version: {what} is unknown to this voxface "
                        f"({voxface.__version__}){by}")


def run_folder(checkpoint: str | Path) -> Path | None:
    """The run folder a checkpoint sits in, where it is now: ``RUN/checkpoints/<file>.ckpt`` -> ``RUN``; None for a
    checkpoint kept elsewhere."""
    path = Path(checkpoint)
    return path.parent.parent if path.parent.name == "checkpoints" else None


def _part(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def load_trained_model(path: str | Path) -> tuple[Method, TrainConfig]:
    """The trained method (eval mode, with its encoders) and the training configuration stored in a checkpoint.

    The encoders are rebuilt from the records the checkpoint holds (``encoders/registry.py``: architecture, front
    end as resolved at training, where the weights came from), never re-derived from ``audio.features`` /
    ``audio.weights``. Raises ``WeightsError`` naming the file when it is no ``voxface train`` checkpoint, comes
    from another voxface version, or does not fit the model.
    """
    blob = read_weights(path)
    if not isinstance(blob, dict) or "state_dict" not in blob or "config" not in blob.get("hyper_parameters", {}):
        raise WeightsError(f"{path} is not a 'voxface train' checkpoint (no state_dict / hyper_parameters.config)")
    try:
        config = TrainConfig.from_dict(blob["hyper_parameters"]["config"], str(path))
    except UnknownConfigKey as err:
        raise _another_version(path, blob, f"its config key '{err.key}'") from None
    records = blob.get(ENCODERS_KEY)
    if not isinstance(records, dict) or not {"face", "voice"} <= set(records):
        raise _another_version(path, blob, "its layout (no encoder records)")
    if (run := run_folder(path)) is not None:  # the paths it records, for where its run folder is now
        config = relocate(config, run)
    state = blob["state_dict"]
    face = rebuild_encoder(records["face"], _part(state, "method.face_encoder."), f"{path} (face encoder)")
    voice = rebuild_encoder(records["voice"], _part(state, "method.voice_encoder."), f"{path} (voice encoder)")
    labels = LabelSpace.from_dict(blob["hyper_parameters"].get("labels"))  # classifiers rebuild at their size
    method = method_class(config.method.name)(config.method_args(), Towers.of(face, voice, labels=labels))
    load_strict(method, _part(state, "method."), str(path))
    return method.eval(), config


def checkpoint_digest(path: str | Path) -> str:
    """A short key for a checkpoint file: its name, size and modification time."""
    stat = Path(path).stat()
    return hashlib.sha256(f"{Path(path).resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16]


def checkpoint_sha256(path: str | Path) -> str:
    """The SHA-256 of a checkpoint's bytes: what a fitted backend records, so it follows a moved run folder
    and refuses a retrained one."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
