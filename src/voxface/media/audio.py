"""Read voice clips: a random crop read straight from disk, mono, resampled to 16 kHz."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from voxface.errors import MediaError

SAMPLE_RATE = 16_000


MIN_VOICE_SECONDS = 0.25  # shorter clips carry no voice to speak of, and break the encoders' padding


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

    >>> read_voice("clip.wav", 2.0, np.random.default_rng(0)).shape  # doctest: +SKIP
    (32000,)
    """
    path = Path(path)
    if path.is_dir():
        raise MediaError(f"{path}: is a folder, not an audio file")
    if not path.is_file():
        raise MediaError(f"{path}: audio file does not exist")
    try:
        with sf.SoundFile(str(path)) as handle:
            source_rate, total = handle.samplerate, handle.frames
            if total <= 0:
                raise MediaError(f"{path}: empty audio file (0 frames)")
            if total < MIN_VOICE_SECONDS * source_rate:  # the encoders' framing and padding need more
                raise MediaError(f"{path}: the clip lasts {total / source_rate:.2f} s; voxface needs at least "
                                 f"{MIN_VOICE_SECONDS} s of audio")
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
        raise MediaError(f"{path}: cannot read audio ({err})") from None
    if data.shape[0] == 0:
        raise MediaError(f"{path}: no audio frames could be read (truncated file?)")
    wave = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if not np.isfinite(wave).all():
        raise MediaError(f"{path}: audio contains NaN or infinite samples")
    if source_rate != sample_rate:
        wave = soxr.resample(wave, source_rate, sample_rate, quality="HQ").astype(np.float32, copy=False)
    if crop_seconds is not None:
        wave = loop_to_length(wave, round(crop_seconds * sample_rate))
    return np.ascontiguousarray(wave, dtype=np.float32)


def loop_to_length(wave: np.ndarray, length: int) -> np.ndarray:
    """Repeat a waveform end to end (loop padding) and cut it to ``length`` samples."""
    if len(wave) == 0:
        raise MediaError("cannot loop-pad an empty waveform")
    if len(wave) >= length:
        return wave[:length]
    return np.resize(wave, length)  # np.resize repeats the array cyclically
