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
from voxface.methods.fv_cme import FvCme, FvCmeArgs  # noqa: F401
from voxface.methods.lafv import Lafv, LafvArgs  # noqa: F401
from voxface.methods.pins import Pins, PinsArgs  # noqa: F401
from voxface.methods.sun_su_2025 import SunSu2025, SunSu2025Args

__all__ = ["BATCH_KEYS", "METHODS", "SAMPLERS", "LabelSpace", "Method", "SunSu2025", "SunSu2025Args", "Towers",
           "method_args", "method_class", "register_method"]
