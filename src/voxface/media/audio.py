"""Read voice clips: a random crop read straight from disk, mono, resampled to 16 kHz.

``read_voice`` is the one audio reader of voxface; ``formats.AUDIO_SUFFIXES`` is the one list of audio extensions
(data trees, manifests, the app's gallery): what this machine's libsndfile reads.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from voxface.errors import ConfigError, MediaError
from voxface.formats import AUDIO_SUFFIXES, conversion_advice

SAMPLE_RATE = 16_000


MIN_VOICE_SECONDS = 0.25  # shorter clips carry no voice to speak of, and break the encoders' padding


def check_crop(seconds: float | None, name: str = "crop") -> None:
    """``ConfigError`` naming ``name`` unless ``seconds`` (a crop of each voice; None: whole clips) is finite and at
    least ``MIN_VOICE_SECONDS``: a shorter crop reads less than the shortest voice the readers take."""
    if seconds is not None and not (math.isfinite(seconds) and seconds >= MIN_VOICE_SECONDS):
        raise ConfigError(f"{name} must be a finite number of seconds, at least {MIN_VOICE_SECONDS} (the shortest "
                          f"voice read), got {seconds}")

# Below this level (RMS of the mono wave read, dBFS with full scale 1.0) a clip carries no voice. -60 dBFS is an
# RMS of 33 steps of 16-bit audio: far under speech recorded at any usable gain, and far over what a muted input,
# dithered digital silence or channels that cancel when mixed leave (16-bit quantisation noise alone is -101 dBFS).
# Measured on a VoxSynth of 384 clips: whole clips -40..-12 dBFS, the quietest 1 s stretch of any clip -43 dBFS
# (training crops are 1-2 s); only 0.25 s stretches inside phrase pauses come near it (-64 dBFS at the lowest).
MIN_VOICE_DBFS = -60.0

def level_dbfs(wave: np.ndarray) -> float:
    """RMS level of a waveform in dBFS (full scale 1.0); ``-inf`` for digital silence."""
    rms = float(np.sqrt(np.mean(np.square(wave, dtype=np.float64)))) if len(wave) else 0.0
    return 20 * math.log10(rms) if rms > 0 else -math.inf


def read_voice(
    path: str | Path,
    crop_seconds: float | None = 2.0,
    rng: np.random.Generator | None = None,
    sample_rate: int = SAMPLE_RATE,
) -> np.ndarray:
    """Return a mono float32 waveform at ``sample_rate``.

    With ``crop_seconds``, only the frames of one random crop are read (the start drawn from ``rng``;
    the centre without one), and a clip shorter than the crop is loop-padded to exactly
    ``round(crop_seconds * sample_rate)`` samples. With ``crop_seconds=None`` the whole clip is read.

    Raises MediaError (naming the file) for a missing, unreadable or too short clip (shorter than
    ``MIN_VOICE_SECONDS`` in the frames that really decode), for a truncated one (its header promises more frames
    than the file holds), and for one with no voice: the frames read (the crop, when cropping) below
    ``MIN_VOICE_DBFS`` once mixed to mono. A training crop that falls on silence in an otherwise spoken clip is
    replaced by the dataset's retry like any bad read.

    >>> read_voice("clip.wav", 2.0, np.random.default_rng(0)).shape  # doctest: +SKIP
    (32000,)
    """
    path = Path(path)
    if path.is_dir():
        raise MediaError(f"{path}: is a folder, not an audio file")
    if not path.is_file():
        raise MediaError(f"{path}: audio file does not exist")
    opened = False
    try:
        with sf.SoundFile(str(path)) as handle:
            opened = True
            source_rate, total, container = handle.samplerate, handle.frames, handle.format
            promised = header_frames(path, container)
            if promised is not None and promised > total:  # libsndfile counts what a WAV or AIFF holds, silently
                raise _truncated(path, promised, total)
            if total <= 0:
                raise MediaError(f"{path}: empty audio file (0 frames)")
            if total < MIN_VOICE_SECONDS * source_rate:  # the encoders' framing and padding need more
                raise _too_short(path, total / source_rate)
            if crop_seconds is None:
                wanted, start = total, 0
            else:
                if crop_seconds <= 0:
                    raise MediaError(f"crop length must be positive, got {crop_seconds} s")
                wanted = min(total, math.ceil(crop_seconds * source_rate))
                spare = total - wanted
                start = (int(rng.integers(0, spare + 1)) if rng is not None else spare // 2) if spare else 0
                handle.seek(start)
            data = handle.read(wanted, dtype="float32", always_2d=True)
    except MediaError:
        raise
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError) as err:
        if opened:  # the header was read, the frames were not: a cut FLAC fails to decode where its data stop
            decodable = _decodable_frames(path)
            if decodable < total:
                raise _truncated(path, total, decodable) from None
        unknown = path.suffix.lower() not in AUDIO_SUFFIXES
        raise MediaError(f"{path}: cannot read audio ({err})" + (f"; {conversion_advice(path.suffix)}" if unknown
                                                                 else "")) from None
    if data.shape[0] < wanted:
        if container not in ESTIMATED_LENGTH_FORMATS:
            raise _truncated(path, total, start + data.shape[0])
        if data.shape[0] < MIN_VOICE_SECONDS * source_rate:  # the length was an estimate: what decoded counts
            raise _too_short(path, data.shape[0] / source_rate, decoded=True)
    wave = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if not np.isfinite(wave).all():
        raise MediaError(f"{path}: audio contains NaN or infinite samples")
    level = level_dbfs(wave)
    if level < MIN_VOICE_DBFS:
        read = ("the clip" if wanted == total else
                f"the {wanted / source_rate:.2f} s read from {start / source_rate:.2f} s")
        said = "digital silence" if level == -math.inf else f"{level:.0f} dBFS"
        message = f"{path}: no voice to score: {read} is {said}, below the {MIN_VOICE_DBFS:g} dBFS a voice needs"
        if data.shape[1] > 1 and max(level_dbfs(data[:, c]) for c in range(data.shape[1])) >= MIN_VOICE_DBFS:
            message += (f" (its {data.shape[1]} channels cancel when mixed to mono, one is phase-inverted: keep one, "
                        "e.g. ffmpeg -i IN -af 'pan=mono|c0=c0' OUT.wav)")
        elif level > -math.inf:
            message += "; if it is speech recorded very low, raise its level, e.g. ffmpeg -i IN -af loudnorm OUT.wav"
        raise MediaError(message)
    if source_rate != sample_rate:
        wave = soxr.resample(wave, source_rate, sample_rate, quality="HQ").astype(np.float32, copy=False)
    if crop_seconds is not None:
        wave = loop_to_length(wave, round(crop_seconds * sample_rate))
    return np.ascontiguousarray(wave, dtype=np.float32)


# libsndfile's containers whose frame count is an estimate rather than a header's promise: an MP3 without a Xing/Info
# header is measured from its size and first frames' bit rate, so decoding fewer frames need not mean a cut file.
ESTIMATED_LENGTH_FORMATS = ("MP3", "MPEG")


def _too_short(path: Path, seconds: float, decoded: bool = False) -> MediaError:
    what = "only {:.2f} s of the clip could be decoded" if decoded else "the clip lasts {:.2f} s"
    return MediaError(f"{path}: {what.format(seconds)}; voxface needs at least {MIN_VOICE_SECONDS} s of audio")


def _truncated(path: Path, promised: int, read: int) -> MediaError:
    return MediaError(f"{path}: header says {promised} frames, only {read} could be read (truncated?); copy or "
                      "export the file again")


def _decodable_frames(path: Path) -> int:
    """How many frames of a file decode from its start before the decoder stops or fails (to a block: a block
    that fails yields nothing)."""
    count = 0
    try:
        with sf.SoundFile(str(path)) as handle:
            for block in handle.blocks(blocksize=4096, dtype="float32", always_2d=True):
                count += block.shape[0]
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError):
        pass
    return count


def header_frames(path: str | Path, container: str) -> int | None:
    """The frame count a WAV (``data`` chunk size / block align) or AIFF (``COMM`` chunk) header states, or None
    for other containers, for a header that states none (0, or a streaming writer's placeholder) or one that cannot
    be parsed. libsndfile reports the frames such a file really holds instead, so a cut file reads without a word."""
    if container not in ("WAV", "WAVEX", "AIFF"):
        return None
    try:
        with open(path, "rb") as handle:
            head = handle.read(12)
            if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
                endian = "<"
            elif head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
                endian = ">"
            else:
                return None
            block_align = 0
            for _ in range(64):  # the data or COMM chunk comes within the first few of a sane file
                chunk = handle.read(8)
                if len(chunk) < 8:
                    return None
                name, size = chunk[:4], struct.unpack(f"{endian}I", chunk[4:])[0]
                body = handle.tell()
                if endian == "<" and name == b"fmt " and size >= 14:
                    block_align = struct.unpack("<H", handle.read(14)[12:14])[0]
                elif endian == "<" and name == b"data":
                    # 0 and sizes near 4 GiB are what writers leave when they cannot seek back to fill the size in
                    if not block_align or size == 0 or size >= 0x7FFFF000:
                        return None
                    return size // block_align
                elif endian == ">" and name == b"COMM" and size >= 6:
                    frames = struct.unpack(">hI", handle.read(6))[1]
                    return frames or None
                handle.seek(body + size + (size & 1))  # chunks are padded to an even length
    except (OSError, struct.error):
        return None
    return None


def loop_to_length(wave: np.ndarray, length: int) -> np.ndarray:
    """Repeat a waveform end to end (loop padding) and cut it to ``length`` samples."""
    if len(wave) == 0:
        raise MediaError("cannot loop-pad an empty waveform")
    if len(wave) >= length:
        return wave[:length]
    return np.resize(wave, length)  # np.resize repeats the array cyclically
