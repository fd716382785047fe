"""Encoders: the face teacher (IResNet) and its mapping MLP, ECAPA-TDNN, and SSL speech encoders."""

from voxface.models.ecapa import ECAPATDNN
from voxface.models.iresnet import IResNet, iresnet, iresnet18, iresnet34, iresnet50
from voxface.models.loading import (
    load_encoder,
    load_insightface_backbone,
    load_speechbrain_ecapa,
    read_state_dict,
    save_encoder,
)
from voxface.models.mapping import FeatureMapping
from voxface.models.ssl import SSLEncoder

__all__ = [
    "ECAPATDNN", "FeatureMapping", "IResNet", "SSLEncoder", "iresnet", "iresnet18", "iresnet34", "iresnet50",
    "load_encoder", "load_insightface_backbone", "load_speechbrain_ecapa", "read_state_dict", "save_encoder",
]
