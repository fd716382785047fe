"""voxface: a shared voice-face identity embedding space (Sun & Su 2025) and its benchmark.

The package follows the data flow: ``protocol`` (trial lists, splits, manifests) -> ``media``
(audio crops, fbank, faces, datasets) -> models -> losses -> training -> evaluation -> report.
"""

from voxface.errors import ConfigError, MediaError, ProtocolError, VoxfaceError, WeightsError

__version__ = "0.2.0"

__all__ = ["ConfigError", "MediaError", "ProtocolError", "VoxfaceError", "WeightsError", "__version__"]
