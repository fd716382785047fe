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
from voxface.methods.cmpc import Cmpc  # noqa: F401  (registers it)
from voxface.methods.self_lifting import SelfLifting  # noqa: F401  (registers it)
from voxface.methods.sun_su_2025 import SunSu2025, SunSu2025Args
from voxface.methods.vfmr import Vfmr  # noqa: F401  (registers it)

__all__ = ["BATCH_KEYS", "METHODS", "SAMPLERS", "LabelSpace", "Method", "SunSu2025", "SunSu2025Args", "Towers",
           "method_args", "method_class", "register_method"]
