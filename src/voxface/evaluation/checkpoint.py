"""Rebuild a trained voice-face model from a ``voxface train`` checkpoint alone (no original weight files)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from voxface.errors import WeightsError
from voxface.models.ecapa import ECAPATDNN
from voxface.models.iresnet import iresnet
from voxface.models.loading import ecapa_config, iresnet_config, load_strict, read_weights
from voxface.models.mapping import FeatureMapping
from voxface.models.voiceface import VoiceFaceModel
from voxface.training.config import TrainConfig, audio_front_end, relocate


def _part(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def run_name(checkpoint: str | Path) -> str:
    """A run's name from its checkpoint: ``runs/demo/train/full/checkpoints/best.ckpt`` -> ``full``."""
    path = Path(checkpoint)
    return path.parent.parent.name if path.parent.name == "checkpoints" and path.parent.parent.name else path.stem


def run_folder(checkpoint: str | Path) -> Path | None:
    """The run folder a checkpoint sits in, where it is now: ``RUN/checkpoints/<file>.ckpt`` -> ``RUN``; None for a
    checkpoint kept elsewhere."""
    path = Path(checkpoint)
    return path.parent.parent if path.parent.name == "checkpoints" else None


def load_trained_model(path: str | Path) -> tuple[VoiceFaceModel, TrainConfig]:
    """The ``VoiceFaceModel`` (eval mode) and the training configuration stored in a checkpoint."""
    blob = read_weights(path)
    if not isinstance(blob, dict) or "state_dict" not in blob or "config" not in blob.get("hyper_parameters", {}):
        raise WeightsError(f"{path} is not a 'voxface train' checkpoint (no state_dict / hyper_parameters.config)")
    config = TrainConfig.from_dict(blob["hyper_parameters"]["config"], str(path))
    if (run := run_folder(path)) is not None:  # the paths it records, for where its run folder is now
        config = relocate(config, run)
    state = blob["state_dict"]
    teacher_state = _part(state, "model.teacher.")
    teacher = load_strict(iresnet(**iresnet_config(teacher_state)), teacher_state, f"{path} (teacher)")
    audio_state = _part(state, "model.audio.")
    if config.audio.encoder == "ecapa":
        audio: torch.nn.Module = ECAPATDNN(**ecapa_config(audio_state))
    else:
        from transformers import AutoConfig, AutoModel

        from voxface.models.ssl import SSLEncoder

        hf = dict(blob.get("voxface_audio_hf_config") or {})
        if not hf:
            raise WeightsError(f"{path} lacks the SSL encoder's configuration (voxface_audio_hf_config)")
        hf_config = AutoConfig.for_model(hf.pop("model_type"), **hf)
        audio = SSLEncoder(AutoModel.from_config(hf_config), embedding_size=config.audio.embedding_size,
                           layer_weighting=config.audio.layer_weighting,
                           normalize_waveform=bool(blob.get("voxface_audio_normalize_waveform", False)))
    load_strict(audio, audio_state, f"{path} (audio encoder)")
    mapping = FeatureMapping(teacher.num_features, audio.embedding_size, tuple(config.mapping.hidden),
                             config.mapping.norm, config.mapping.dropout, config.mapping.activation)
    load_strict(mapping, _part(state, "model.mapping."), f"{path} (mapping)")
    model = VoiceFaceModel(teacher, mapping, audio, config.audio.mean_norm, specaugment=False, teacher_frozen=True,
                           features=audio_front_end(config))
    return model.eval(), config


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
