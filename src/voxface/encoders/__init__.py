"""Encoders: the face teacher (IResNet), ECAPA-TDNN behind its fbank, SSL speech encoders; built by name in
``registry.py``."""

from voxface.encoders.ecapa import ECAPATDNN
from voxface.encoders.fbank_encoder import FbankEncoder
from voxface.encoders.iresnet import IResNet, iresnet, iresnet18, iresnet34, iresnet50
from voxface.encoders.loading import load_insightface_backbone, load_speechbrain_ecapa, read_state_dict
from voxface.encoders.registry import (
    ENCODERS,
    build_face_encoder,
    build_voice_encoder,
    encoder_record,
    load_encoder,
    rebuild_encoder,
    save_encoder,
    weights_provenance,
)
from voxface.encoders.ssl import SSLEncoder

__all__ = [
    "ECAPATDNN", "ENCODERS", "FbankEncoder", "IResNet", "SSLEncoder", "build_face_encoder", "build_voice_encoder",
    "encoder_record", "iresnet", "iresnet18", "iresnet34", "iresnet50", "load_encoder", "load_insightface_backbone",
    "load_speechbrain_ecapa", "read_state_dict", "rebuild_encoder", "save_encoder", "weights_provenance",
]
