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
from voxface.methods.sun_su_2025 import SunSu2025, SunSu2025Args
from voxface.methods.wen_2021 import Wen2021, Wen2021Args

__all__ = ["BATCH_KEYS", "METHODS", "SAMPLERS", "LabelSpace", "Method", "SunSu2025", "SunSu2025Args", "Towers",
           "Wen2021", "Wen2021Args", "method_args", "method_class", "register_method"]
