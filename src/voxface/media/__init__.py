"""Media: voice crops, Kaldi fbank, SpecAugment, face images, and the pair dataset with its sampler."""

from voxface.media.audio import SAMPLE_RATE, read_voice
from voxface.media.dataset import IdentityBatchSampler, PairConfig, PairDataset, collate_pairs
from voxface.media.faces import FACE_SIZE, face_to_tensor, read_face
from voxface.media.fbank import KaldiFbank
from voxface.media.specaugment import SpecAugment

__all__ = [
    "FACE_SIZE", "SAMPLE_RATE", "IdentityBatchSampler", "KaldiFbank", "PairConfig", "PairDataset", "SpecAugment",
    "collate_pairs", "face_to_tensor", "read_face", "read_voice",
]
