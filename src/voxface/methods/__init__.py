"""Methods by name (``method.name`` in a training config): each one file with its heads, loss and docstring."""

from voxface.methods.base import (
    BATCH_KEYS,
    METHODS,
    SAMPLERS,
    LabelSpace,
    Method,
    Towers,
    method_args,
    method_class,
    register_method,
)
from voxface.methods.dimnet import Dimnet, DimnetArgs
from voxface.methods.fop import Fop, FopArgs
from voxface.methods.sbnet import Sbnet, SbnetArgs
from voxface.methods.ssnet import Ssnet, SsnetArgs
from voxface.methods.sun_su_2025 import SunSu2025, SunSu2025Args

__all__ = ["BATCH_KEYS", "METHODS", "SAMPLERS", "Dimnet", "DimnetArgs", "Fop", "FopArgs", "LabelSpace", "Method",
           "Sbnet", "SbnetArgs", "Ssnet", "SsnetArgs", "SunSu2025", "SunSu2025Args", "Towers", "method_args",
           "method_class", "register_method"]
