"""Rebuild a trained voice-face model from a ``voxface train`` checkpoint alone (no original weight files)."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import torch

import voxface
from voxface.errors import WeightsError
from voxface.media.fbank import FBANKS
from voxface.encoders.ecapa import ECAPATDNN
from voxface.encoders.iresnet import iresnet
from voxface.encoders.loading import ecapa_config, iresnet_config, load_strict, read_weights
from voxface.methods.heads import FeatureMapping
from voxface.encoders.voiceface import VoiceFaceModel
from voxface.training.config import FRONT_END_KEY, TrainConfig, UnknownConfigKey, audio_front_end, relocate

log = logging.getLogger("voxface")


def _part(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def run_name(checkpoint: str | Path) -> str:
    """A run's name from its checkpoint: ``runs/demo/train/full/checkpoints/best.ckpt`` -> ``full``."""
    run = run_folder(checkpoint)
    return run.name if run is not None and run.name else Path(checkpoint).stem


def _another_version(path: str | Path, blob: dict[str, Any], what: str) -> WeightsError:
    written = blob.get("voxface_version")
    by = f"; it was written by voxface {written}" if written and written != voxface.__version__ else ""
    return WeightsError(f"{path} comes from another voxface version: {what} is unknown to this voxface "
                        f"({voxface.__version__}){by}")


def _front_end(path: str | Path, blob: dict[str, Any], config: TrainConfig) -> dict[str, Any]:
    """The front end the checkpoint records (``VoiceFaceModel.front_end()``); an older checkpoint that records
    none gets today's derivation from its config, with a warning."""
    front = blob.get(FRONT_END_KEY)
    ecapa = config.audio.encoder == "ecapa"
    if front is None:
        if ecapa:
            front = {"input": "fbank", "fbank": audio_front_end(config), "settings": None}
            said = (f"{front['fbank']} fbank from audio.features={config.audio.features} and "
                    f"audio.weights={config.audio.weights or 'none'}")
        else:
            front = {"input": "waveform", "normalize_waveform": bool(blob.get("voxface_audio_normalize_waveform"))}
            said = f"waveform normalisation {'on' if front['normalize_waveform'] else 'off'}"
        log.warning("%s records no audio front end (written by an older voxface): using %s; if the run was "
                    "trained with another, its scores are wrong", path, said)
        return front
    expected = "fbank" if ecapa else "waveform"
    if not isinstance(front, dict) or front.get("input") != expected or (ecapa and front.get("fbank") not in FBANKS):
        raise _another_version(path, blob, f"its recorded audio front end {front!r}")
    return front


def run_folder(checkpoint: str | Path) -> Path | None:
    """The run folder a checkpoint sits in, where it is now: ``RUN/checkpoints/<file>.ckpt`` -> ``RUN``; None for a
    checkpoint kept elsewhere."""
    path = Path(checkpoint)
    return path.parent.parent if path.parent.name == "checkpoints" else None


def load_trained_model(path: str | Path) -> tuple[VoiceFaceModel, TrainConfig]:
    """The ``VoiceFaceModel`` (eval mode) and the training configuration stored in a checkpoint.

    The audio front end is the one the checkpoint records (``voxface_front_end``), never re-derived from
    ``audio.features`` / ``audio.weights``. Raises ``WeightsError`` naming the file when it is no
    ``voxface train`` checkpoint, comes from another voxface version, or does not fit the model.
    """
    blob = read_weights(path)
    if not isinstance(blob, dict) or "state_dict" not in blob or "config" not in blob.get("hyper_parameters", {}):
        raise WeightsError(f"{path} is not a 'voxface train' checkpoint (no state_dict / hyper_parameters.config)")
    try:
        config = TrainConfig.from_dict(blob["hyper_parameters"]["config"], str(path))
    except UnknownConfigKey as err:
        raise _another_version(path, blob, f"its config key '{err.key}'") from None
    if (run := run_folder(path)) is not None:  # the paths it records, for where its run folder is now
        config = relocate(config, run)
    front = _front_end(path, blob, config)
    state = blob["state_dict"]
    teacher_state = _part(state, "model.teacher.")
    teacher = load_strict(iresnet(**iresnet_config(teacher_state, f"{path} (teacher)")), teacher_state,
                          f"{path} (teacher)")
    audio_state = _part(state, "model.audio.")
    if config.audio.encoder == "ecapa":
        audio: torch.nn.Module = ECAPATDNN(**ecapa_config(audio_state, source=f"{path} (audio encoder)"))
    else:
        from voxface.encoders.ssl import SSLEncoder, model_from_config

        hf = blob.get("voxface_audio_hf_config")
        if not hf:
            raise WeightsError(f"{path} lacks the SSL encoder's configuration (voxface_audio_hf_config)")
        audio = SSLEncoder(model_from_config(hf, str(path)), embedding_size=config.audio.embedding_size,
                           layer_weighting=config.audio.layer_weighting,
                           normalize_waveform=bool(front["normalize_waveform"]))
    load_strict(audio, audio_state, f"{path} (audio encoder)")
    mapping = FeatureMapping(teacher.num_features, audio.embedding_size, tuple(config.mapping.hidden),
                             config.mapping.norm, config.mapping.dropout, config.mapping.activation)
    load_strict(mapping, _part(state, "model.mapping."), f"{path} (mapping)")
    try:
        model = VoiceFaceModel(teacher, mapping, audio, config.audio.mean_norm, specaugment=False,
                               teacher_frozen=True, features=front.get("fbank") or "kaldi",
                               fbank_settings=front.get("settings"))
    except TypeError as err:  # settings this version's fbank does not take
        raise _another_version(path, blob, f"its recorded fbank settings ({err})") from None
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
