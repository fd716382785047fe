"""VoxSynth: a synthetic voice-face benchmark in the VoxCeleb1 layout, with a known oracle ceiling."""

from voxface.synth.build import SynthConfig, generate
from voxface.synth.model import IdentityModel
from voxface.synth.oracle import Oracle

__all__ = ["IdentityModel", "Oracle", "SynthConfig", "generate"]
