"""Errors a user can act on. The CLI prints their message on one line instead of a traceback."""


class VoxfaceError(Exception):
    """Base class: the message says what went wrong and where, in one line."""


class ProtocolError(VoxfaceError):
    """A protocol file (metadata, splits, trial list, manifest) is missing or malformed."""


class MediaError(VoxfaceError):
    """An audio or image file is missing, empty, corrupt or unusable."""


class ConfigError(VoxfaceError):
    """A configuration key or value is unknown or invalid."""


class OverrideError(ConfigError):
    """A command-line override (``section.key=value``) is malformed or names a key or value the configuration
    refuses: ``override`` is its text, ``key`` its dotted key and ``reason`` what is wrong, without the override."""

    def __init__(self, override: str, reason: str) -> None:
        super().__init__(f"command-line override {override!r}: {reason}")
        self.override, self.key, self.reason = override, override.partition("=")[0].strip(), reason


class WeightsError(VoxfaceError):
    """A weights file or model folder is missing, unreadable, or does not fit the model."""


class FeaturesError(VoxfaceError):
    """A feature store folder is missing, unfinished, or made with other settings than the caller's."""
