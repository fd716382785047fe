"""The two encoders and the method a configuration names, built without the training loop's imports (Lightning):
evaluation rebuilds a run's starting encoders with the same code and draws."""

from __future__ import annotations

import torch

from voxface.encoders.registry import build_face_encoder, build_voice_encoder
from voxface.errors import VoxfaceError
from voxface.methods import LabelSpace, Method, Towers, method_class
from voxface.training.config import TrainConfig


def build_towers(config: TrainConfig, face: torch.nn.Module | None = None, labels: LabelSpace | None = None) -> Towers:
    """The two encoders a configuration names, through the registry (face first, then voice: the order random
    initialisation draws in); ``face`` given: that face encoder instead of loading ``face.weights``; ``labels``: the
    training split's label sizes, for methods with classifiers."""
    face = face if face is not None else build_face_encoder(config.face.encoder, config.face.weights)
    if face.input_size != config.data.face_size:
        raise VoxfaceError(f"the face teacher takes {face.input_size}px faces but data.face_size is "
                           f"{config.data.face_size}; set data.face_size={face.input_size}")
    audio = config.audio
    voice = build_voice_encoder(audio.encoder, audio.weights, channels=audio.channels,
                                embedding_size=audio.embedding_size, features=audio.features,
                                mean_norm=audio.mean_norm, specaugment=audio.specaugment,
                                layer_weighting=audio.layer_weighting,
                                freeze_feature_encoder=audio.freeze_feature_encoder,
                                finetune_top_layers=audio.finetune_top_layers,
                                apply_spec_augment=audio.apply_spec_augment)
    # feature mode: both encoders frozen (their outputs come from feature stores); only the method's heads train
    return Towers.of(face, voice, face_frozen=config.face.frozen, voice_frozen=config.feature_mode, labels=labels)


def build_method(config: TrainConfig, labels: LabelSpace | None = None) -> Method:
    """The configured method on the configured encoders."""
    return method_class(config.method.name)(config.method_args(), build_towers(config, labels=labels))
