"""Errors a user can act on. The CLI prints their message on one line instead of a traceback."""


class VoxfaceError(Exception):
    """Base class: the message says what went wrong and where, in one line."""


class ProtocolError(VoxfaceError):
    """A protocol file (metadata, splits, trial list, manifest) is missing or malformed."""


class MediaError(VoxfaceError):
    """An audio or image file is missing, empty, corrupt or unusable."""


class ConfigError(VoxfaceError):
    """A configuration key or value is unknown or invalid."""


class WeightsError(VoxfaceError):
    """A weights file or model folder is missing, unreadable, or does not fit the model."""


class FeaturesError(VoxfaceError):
    """A feature store folder is missing, unfinished, or made with other settings than the caller's."""
