"""The file extensions voxface reads: ``AUDIO_SUFFIXES`` (what this machine's libsndfile reads) and
``IMAGE_SUFFIXES`` (the everyday image formats this Pillow opens), the one list of each for the readers
(``media.audio``, ``media.faces``), the data trees and manifests (``protocol``), the app's gallery and
``protocol check``; and ``conversion_advice``, what to do with audio of another extension. It sits below both
``protocol`` and ``media``, so that neither imports the other for these.
"""

from __future__ import annotations

import soundfile as sf
from PIL import features

# libsndfile's container formats and the extensions their files come under, most common first.
_FORMAT_SUFFIXES = {
    "WAV": (".wav",), "FLAC": (".flac",), "MP3": (".mp3",), "OGG": (".ogg", ".oga"), "AIFF": (".aiff", ".aif"),
    "AU": (".au",), "CAF": (".caf",), "W64": (".w64",), "RF64": (".rf64",),
}


def _readable_suffixes() -> tuple[str, ...]:
    formats = sf.available_formats()  # what the libsndfile soundfile loaded reads (1.2.2 with soundfile 0.14)
    suffixes = [s for name, group in _FORMAT_SUFFIXES.items() if name in formats for s in group]
    if "OGG" in formats and "OPUS" in sf.available_subtypes("OGG"):
        suffixes.append(".opus")
    return tuple(suffixes)


AUDIO_SUFFIXES: tuple[str, ...] = _readable_suffixes()


def conversion_advice(suffix: str) -> str:
    """One sentence for audio files of an extension libsndfile does not read (``.m4a``, ``.aac``, ``.mp4`` ...)."""
    source = f"clip{suffix}" if suffix else "IN"
    return (f"voxface reads {' '.join(AUDIO_SUFFIXES)} audio (libsndfile), not {suffix or 'this file'}: convert to "
            f"16 kHz mono WAV, e.g. ffmpeg -i {source} -ac 1 -ar 16000 clip.wav")


# The image files a face may come as: the everyday formats, where this Pillow reads them (found by their
# extension in galleries and data trees; read_face itself reads any image Pillow recognises, whatever its name).
# JPEG, PNG, BMP, TIFF and GIF are built into every Pillow; WebP and AVIF only where Pillow was built with their
# library. Asked of PIL.features, not of Image.registered_extensions(), which imports all of Pillow's ~40 format
# plugins (0.2 s on every command's start).
_READ_WITH_LIBRARY = {".webp": "webp", ".avif": "avif"}
IMAGE_SUFFIXES: tuple[str, ...] = tuple(
    suffix for suffix in (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".avif")
    if suffix not in _READ_WITH_LIBRARY or features.check_module(_READ_WITH_LIBRARY[suffix]))
