"""Methods by name (``method.name`` in a training config): each one file with its heads, loss and docstring.

Importing this package imports every shipped method, which registers it (``base.register_method``).
"""

from voxface.methods import (  # noqa: F401  (importing a method registers it)
    cmpc,
    dimnet,
    fop,
    fv_cme,
    lafv,
    msm,
    pins,
    sbnet,
    self_lifting,
    ssnet,
    sun_su_2025,
    vfmr,
    wen_2021,
)
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

__all__ = ["BATCH_KEYS", "METHODS", "SAMPLERS", "LabelSpace", "Method", "SunSu2025", "SunSu2025Args", "Towers",
           "method_args", "method_class", "register_method"]
