"""Encoders by name: the one place that builds, rebuilds from a checkpoint, saves and describes an encoder.

| name | modality | takes | weights |
|---|---|---|---|
| ``iresnet`` | face | (B, 3, S, S) faces | insightface ``backbone.pth``, or one ``voxface pretrain`` wrote |
| ``ecapa`` | voice | Kaldi's or SpeechBrain's fbank | SpeechBrain ``embedding_model.ckpt``, or ``voxface pretrain``'s |
| ``wav2vec2``, ``hubert``, ``wavlm`` | voice | the waveform | a HuggingFace ``save_pretrained`` folder |

Every encoder answers ``forward(x) -> (B, embedding_size)`` and has ``.embedding_size``; a voice encoder takes
(B, samples) 16 kHz waveforms (``lengths``, ``generator`` optional) and says what it computes from them
(``.input``, ``.front_end()``). Nothing else in voxface tests an encoder's kind: training, checkpoint loading,
evaluation, feature extraction and ``save_encoder`` call the functions below.

Where weights come from (``weights_provenance``): a file ``voxface_provenance.json`` beside the weights (written by
``voxface pretrain``) says what they were trained on, whether they heard VoxCeleb and which front end they take.
Without one, a SpeechBrain ECAPA checkpoint is taken for ``spkrec-ecapa-voxceleb`` (VoxCeleb1+2, SpeechBrain's
fbank), which has heard 237 of the 250 VoxCeleb1 unseen-unheard test identities.

Example:
    >>> encoder = build_voice_encoder("ecapa", channels=[32, 32, 32, 32, 96], embedding_size=16).eval()
    >>> encoder(torch.randn(2, 32000)).shape, encoder.input
    (torch.Size([2, 16]), 'fbank')
    >>> record = encoder_record("ecapa", encoder)
    >>> rebuild_encoder(record, encoder.state_dict()).front_end() == encoder.front_end()
    True
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from voxface.encoders.ecapa import ECAPATDNN
from voxface.encoders.fbank_encoder import FbankEncoder
from voxface.encoders.iresnet import IResNet, iresnet
from voxface.encoders.loading import (
    _is_state_dict,
    ecapa_config,
    iresnet_config,
    load_insightface_backbone,
    load_strict,
    read_state_dict,
    read_weights,
)
from voxface.errors import ConfigError, WeightsError
from voxface.media.fbank import FBANKS

log = logging.getLogger("voxface")


@dataclass(frozen=True)
class EncoderKind:
    name: str
    modality: str  # "face" or "voice"
    takes: str  # "image", "fbank" or "waveform"
    weights: str  # what its weights file is
    release_file: str = ""  # the file name its releases use, for encoders voxface trains from scratch (pretrain)
    architecture: tuple[str, ...] = ()  # the settings that build it at random (build_encoder)


ENCODERS: dict[str, EncoderKind] = {kind.name: kind for kind in (
    EncoderKind("iresnet", "face", "image", "an insightface arcface_torch backbone.pth (plain state dict)",
                "backbone.pth", ("depth", "width", "input_size", "num_features")),
    EncoderKind("ecapa", "voice", "fbank", "a SpeechBrain embedding_model.ckpt; none: random initialisation",
                "embedding_model.ckpt", ("channels", "embedding_size", "features", "mean_norm", "specaugment")),
    EncoderKind("wav2vec2", "voice", "waveform", "a local HuggingFace Wav2vec 2.0 folder"),
    EncoderKind("hubert", "voice", "waveform", "a local HuggingFace HuBERT folder"),
    EncoderKind("wavlm", "voice", "waveform", "a local HuggingFace WavLM folder"),
)}
PROVENANCE_FILE = "voxface_provenance.json"
SPEECHBRAIN_VOXCELEB = "VoxCeleb1+2 (SpeechBrain spkrec-ecapa-voxceleb)"


def encoder_names(modality: str) -> tuple[str, ...]:
    """The registered encoders of ``modality`` ("face" or "voice")."""
    return tuple(name for name, kind in ENCODERS.items() if kind.modality == modality)


def check_encoder_name(name: str, modality: str, key: str) -> None:
    """ConfigError naming ``key`` unless ``name`` is a registered ``modality`` encoder."""
    if name not in encoder_names(modality):
        raise ConfigError(f"config value {key} must be one of {encoder_names(modality)}, got {name!r}")


# ---------------------------------------------------------------- where weights come from


def provenance_file(weights: str | Path) -> Path:
    """Where the provenance record of ``weights`` (a file, or a model folder) lies: ``voxface_provenance.json``
    beside the file, or inside the folder."""
    weights = Path(weights)
    return weights / PROVENANCE_FILE if weights.is_dir() else weights.with_name(PROVENANCE_FILE)


def weights_provenance(name: str, weights: str | Path | None) -> dict[str, Any]:
    """``{"source", "trained_on", "heard_voxceleb", "front_end"}`` of an encoder's weights (module docstring).

    ``front_end`` is what the weights take (None: the encoder's default). Raises ``WeightsError`` when a
    provenance file exists but cannot be read.
    """
    if not weights:
        return {"source": "random initialisation", "trained_on": None, "heard_voxceleb": False, "front_end": None}
    file = provenance_file(weights)
    if file.is_file():
        try:
            record = json.loads(file.read_text())
            return {"source": str(weights), "trained_on": str(record["trained_on"]),
                    "heard_voxceleb": bool(record["heard_voxceleb"]), "front_end": record.get("front_end")}
        except (ValueError, KeyError, TypeError) as err:
            raise WeightsError(f"{file} is not a voxface provenance record (trained_on, heard_voxceleb): "
                               f"{type(err).__name__} {err}") from None
    if name == "ecapa":
        return {"source": str(weights), "trained_on": SPEECHBRAIN_VOXCELEB, "heard_voxceleb": True,
                "front_end": {"input": "fbank", "fbank": "speechbrain", "settings": None}}
    trained_on = "face recognition (insightface release)" if name == "iresnet" else "self-supervised speech"
    return {"source": str(weights), "trained_on": trained_on, "heard_voxceleb": False, "front_end": None}


def write_provenance(weights: str | Path, trained_on: str, heard_voxceleb: bool,
                     front_end: dict[str, Any] | None = None) -> Path:
    """Record beside ``weights`` what they were trained on (read back by ``weights_provenance``)."""
    file = provenance_file(weights)
    file.write_text(json.dumps({"trained_on": trained_on, "heard_voxceleb": heard_voxceleb,
                                "front_end": front_end}, indent=1))
    return file


# ---------------------------------------------------------------- building from a configuration


def build_face_encoder(name: str, weights: str | Path) -> IResNet:
    """The face encoder ``name`` from its released weights (a face teacher is always pretrained)."""
    check_encoder_name(name, "face", "face.encoder")
    return load_insightface_backbone(weights)


def build_voice_encoder(name: str, weights: str | Path | None = None, *, channels: list[int] | tuple[int, ...] = (
        1024, 1024, 1024, 1024, 3072), embedding_size: int | None = 192, features: str = "auto",
        mean_norm: bool = True, specaugment: bool = False, layer_weighting: bool = False,
        freeze_feature_encoder: bool = True, finetune_top_layers: int = -1,
        apply_spec_augment: bool = False) -> nn.Module:
    """The voice encoder ``name``: from ``weights`` when given, else at random (ECAPA only).

    ECAPA: ``features`` "auto" takes the front end the weights record (``weights_provenance``): SpeechBrain's fbank
    for a SpeechBrain release, Kaldi's for random initialisation. SSL: the HuggingFace folder's model, which must be
    of kind ``name``; ``embedding_size`` None keeps its hidden size. Raises ``ConfigError`` / ``WeightsError``.
    """
    check_encoder_name(name, "voice", "audio.encoder")
    if name == "ecapa":
        provenance = weights_provenance(name, weights)
        recorded = provenance["front_end"] or {"input": "fbank", "fbank": "kaldi", "settings": None}
        if recorded.get("input") != "fbank":  # e.g. a face teacher's backbone.pth given as audio.weights
            raise WeightsError(f"{weights} records a {recorded.get('input')!r} front end in its "
                               f"{PROVENANCE_FILE}: these are not ECAPA-TDNN voice weights")
        kind = recorded["fbank"] if features == "auto" else features
        if kind not in FBANKS:
            raise ConfigError(f"config value audio.features must be auto or one of {tuple(FBANKS)}, got {kind!r}")
        settings = dict(recorded.get("settings") or {}) if kind == recorded["fbank"] else {}
        settings.setdefault("mean_norm", mean_norm)
        network = (ECAPATDNN(**ecapa_config(state := read_state_dict(weights), source=str(weights)))
                   if weights else ECAPATDNN(channels=tuple(channels), embedding_size=embedding_size or 192))
        if weights:
            load_strict(network, state, str(weights))
        return FbankEncoder(network, kind, settings, specaugment=specaugment)
    if not weights:
        raise ConfigError(f"audio.encoder {name} needs audio.weights: a local HuggingFace model folder")
    from voxface.encoders.ssl import SSLEncoder

    encoder = SSLEncoder.from_pretrained(
        weights, apply_spec_augment=apply_spec_augment, embedding_size=embedding_size,
        layer_weighting=layer_weighting, freeze_feature_encoder=freeze_feature_encoder,
        finetune_top_layers=None if finetune_top_layers < 0 else finetune_top_layers)
    if encoder.config.model_type != name:
        raise WeightsError(f"audio.weights {weights} holds a {encoder.config.model_type} model, "
                           f"but audio.encoder is {name}")
    return encoder


def build_encoder(name: str, **settings: Any) -> nn.Module:
    """A registered encoder that can be trained from scratch (``EncoderKind.architecture``), at random
    initialisation from its architecture ``settings``; ConfigError for one that only loads released weights."""
    kind = ENCODERS.get(name)
    if kind is None or not kind.architecture:
        trainable = [k.name for k in ENCODERS.values() if k.architecture]
        raise ConfigError(f"encoder {name!r} cannot be trained from scratch here; these can: {', '.join(trainable)}")
    unknown = sorted(set(settings) - set(kind.architecture))
    if unknown:
        raise ConfigError(f"encoder setting {unknown[0]} is not one of {name}'s ({', '.join(kind.architecture)})")
    if name == "iresnet":
        return iresnet(**settings)
    return build_voice_encoder(name, None, **settings)


def save_release(name: str, encoder: nn.Module, folder: str | Path, trained_on: str) -> Path:
    """Save an encoder trained here as its kind's releases are saved (insightface's plain IResNet state dict in
    ``backbone.pth``; SpeechBrain's plain ECAPA-TDNN state dict in ``embedding_model.ckpt``), with its provenance
    (``trained_on``, never heard VoxCeleb, its front end) beside it, so the loaders read it as a release."""
    kind = ENCODERS[name]
    if not kind.release_file:
        raise ConfigError(f"encoder {name!r} has no release format voxface writes")
    path = Path(folder) / kind.release_file
    network = encoder.network if isinstance(encoder, FbankEncoder) else encoder
    torch.save(network.state_dict(), path)
    write_provenance(path, trained_on, heard_voxceleb=False, front_end=encoder_record(name, encoder)["front_end"])
    return path


def describe_encoder(name: str, encoder: nn.Module) -> str:
    """A short human description, e.g. ``IResNet-18 x0.25 (64px, 128-d)``, ``ECAPA-TDNN [128, ...] (64-d, kaldi
    fbank)``, ``wav2vec2 (768-d, waveform)``."""
    record = encoder_record(name, encoder)
    config, front = record["config"], record["front_end"]
    if name == "iresnet":
        return (f"IResNet-{config['depth']} x{config['width']:g} ({config['input_size']}px, "
                f"{config['num_features']}-d)")
    if name == "ecapa":
        return f"ECAPA-TDNN {list(config['channels'])} ({record['embedding_size']}-d, {front['fbank']} fbank)"
    return f"{name} ({record['embedding_size']}-d, waveform)"


def pretrained_part(encoder: nn.Module) -> nn.Module | None:
    """The part of an encoder that came pretrained and learns at the encoder's rate (an SSL transformer); None when
    the whole encoder does (ECAPA, IResNet). The rest of an SSL encoder (projection, layer weights) is new."""
    from voxface.encoders.ssl import SSLEncoder

    return encoder.model if isinstance(encoder, SSLEncoder) else None


# ---------------------------------------------------------------- records: rebuilding without the original files


def encoder_record(name: str, encoder: nn.Module, provenance: dict[str, Any] | None = None) -> dict[str, Any]:
    """``{"name", "config", "front_end", "provenance"}``: what ``rebuild_encoder`` needs besides the weights (the
    architecture read off the tensors, the front end as resolved) and where the weights came from."""
    from voxface.encoders.ssl import SSLEncoder

    if name not in ENCODERS:
        raise WeightsError(f"unknown encoder {name!r}; registered: {', '.join(ENCODERS)}")
    if isinstance(encoder, IResNet):
        config: dict[str, Any] = iresnet_config(encoder.state_dict())
    elif isinstance(encoder, FbankEncoder):
        config = ecapa_config(encoder.network.state_dict(), _ecapa_dilations(encoder.network))
    elif isinstance(encoder, SSLEncoder):
        config = {"hf_config": encoder.config.to_dict(), "embedding_size": encoder.embedding_size
                  if not isinstance(encoder.projection, nn.Identity) else None,
                  "layer_weighting": encoder.layer_weights is not None,
                  "freeze_feature_encoder": encoder.freeze_feature_encoder,
                  "finetune_top_layers": encoder.finetune_top_layers,
                  "normalize_waveform": encoder.normalize_waveform}
    else:
        raise WeightsError(f"cannot describe a {type(encoder).__name__} as a voxface encoder")
    front_end = encoder.front_end() if hasattr(encoder, "front_end") else {"input": "image",
                                                                          "size": encoder.input_size}
    return {"name": name, "config": config, "front_end": front_end, "embedding_size": encoder.embedding_size,
            "provenance": provenance or {"source": None, "trained_on": None, "heard_voxceleb": False}}


def _ecapa_dilations(model: ECAPATDNN) -> tuple[int, ...]:
    convs = [model.blocks[0].conv.conv] + [b.res2net_block.blocks[0].conv.conv for b in model.blocks[1:]]
    return tuple(c.dilation[0] for c in convs) + (model.mfa.conv.conv.dilation[0],)


def rebuild_encoder(record: dict[str, Any], state: dict[str, torch.Tensor], source: str = "the checkpoint"
                    ) -> nn.Module:
    """The encoder ``encoder_record`` described, with ``state`` (its ``state_dict()``) loaded strictly; in eval
    mode, without SpecAugment. Raises ``WeightsError`` naming ``source``."""
    name, config = record.get("name"), dict(record.get("config") or {})
    front = record.get("front_end") or {}
    try:
        if name == "iresnet":
            encoder: nn.Module = iresnet(**config)
        elif name == "ecapa":
            if front.get("fbank") not in FBANKS:
                raise WeightsError(f"{source}: the ECAPA encoder's recorded front end {front!r} is unknown to this "
                                   "voxface")
            encoder = FbankEncoder(ECAPATDNN(**config), front["fbank"], front.get("settings"))
        elif name in ENCODERS:
            from voxface.encoders.ssl import SSLEncoder, model_from_config

            encoder = SSLEncoder(model_from_config(config.pop("hf_config", {}), source), **config)
        else:
            raise WeightsError(f"{source}: unknown encoder {name!r}; registered: {', '.join(ENCODERS)}")
    except TypeError as err:  # settings this version's classes do not take
        raise WeightsError(f"{source}: the recorded {name} encoder settings do not fit this voxface ({err})") from None
    encoder = load_strict(encoder, state, source).eval()
    encoder.provenance = dict(record.get("provenance") or {})  # where its weights came from, as recorded
    return encoder


# ---------------------------------------------------------------- this project's single-encoder files

ENCODER_FORMAT = "voxface-encoder/2"
OLD_FORMAT = "voxface-encoder/1"  # an older voxface's files: a bare ECAPA (its front end was Kaldi's fbank)


def save_encoder(path: str | Path, encoder: nn.Module, name: str | None = None,
                 provenance: dict[str, Any] | None = None) -> None:
    """Save an encoder with what is needed to rebuild it offline (``load_encoder``). ``name``: its registered name
    (default: ``iresnet`` / ``ecapa`` by type, an SSL encoder's model type)."""
    if name is None:
        name = ("iresnet" if isinstance(encoder, IResNet) else "ecapa" if isinstance(encoder, FbankEncoder)
                else getattr(getattr(encoder, "config", None), "model_type", type(encoder).__name__))
    record = encoder_record(name, encoder, provenance)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": ENCODER_FORMAT, "record": record, "state_dict": encoder.state_dict()}, path)


def load_encoder(path: str | Path) -> nn.Module:
    """Rebuild an encoder ``save_encoder`` wrote (freezing re-applied: it is not part of the weights)."""
    blob = read_weights(path)
    fmt = blob.get("format") if isinstance(blob, dict) else None
    if fmt not in (ENCODER_FORMAT, OLD_FORMAT):
        raise WeightsError(f"{path} is not a voxface encoder checkpoint (expected format {ENCODER_FORMAT})")
    state = blob.get("state_dict")
    if not _is_state_dict(state):
        raise WeightsError(f"{path} is a voxface encoder checkpoint without its weights (no state_dict)")
    if fmt == ENCODER_FORMAT:
        return rebuild_encoder(blob.get("record") or {}, state, str(path))
    kind, config = blob.get("kind"), dict(blob.get("config") or {})  # an older voxface's file
    if kind == "ecapa":
        record = {"name": "ecapa", "config": config, "front_end": {"fbank": "kaldi"}}
        return rebuild_encoder(record, {f"network.{k}": v for k, v in state.items()}, str(path))
    if kind == "ssl":
        name = (config.get("hf_config") or {}).get("model_type")
        return rebuild_encoder({"name": name, "config": config}, state, str(path))
    return rebuild_encoder({"name": kind, "config": config}, state, str(path))
