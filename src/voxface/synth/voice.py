"""Render speech-like voice clips from an identity's voice knobs.

A source-filter synthesiser: a glottal pulse train at the identity's pitch (with jitter, shimmer and
breath noise), through a cascade of formant resonators whose frequencies follow a sequence of vowels,
scaled by the vocal-tract length and shifted by the accent; syllable-like rhythm with consonant noise
bursts and phrase pauses; then a recording channel per video (EQ, band limit, reverberation, noise).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

from voxface.synth.model import VOICE_KNOBS

SAMPLE_RATE = 16_000
# Adult male vowel formants F1-F4 (Hz, Peterson & Barney style): a, i, u, e, o, ae, er.
VOWELS = np.array([[730, 1090, 2440, 3400], [270, 2290, 3010, 3500], [300, 870, 2240, 3300],
                   [530, 1840, 2480, 3450], [570, 840, 2410, 3400], [660, 1720, 2410, 3350],
                   [490, 1350, 1690, 3300]], dtype=np.float64)
BANDWIDTHS = np.array([80.0, 100.0, 140.0, 180.0])
TREMOR_HZ = 7.0  # above the syllable rate (3-6 Hz), so a tremor is not mistaken for rhythm
# The glottal open phase lasts open_quotient / PULSE_REFERENCE_HZ seconds whatever the pitch: a pulse that scaled
# with the period would put the pitch's own spectral slope (12 dB between a low and a high voice) on top of the
# tilt knob's, and a reader then cannot tell them apart (issue 22: tilt R² 0.25 with pitch varying, 0.75 without).
PULSE_REFERENCE_HZ = 250.0


@dataclass(frozen=True)
class VoiceTraits:
    """Physical voice parameters from the normalised knobs."""

    f0: float  # mean pitch, Hz
    formant_scale: float  # < 1: longer vocal tract, lower formants
    jitter: float  # relative period-to-period pitch perturbation
    tremor: float  # depth of a slow (TREMOR_HZ) pitch wobble, relative; the jitter knob's audible part
    breath: float  # aspiration noise relative to the voiced source
    accent: tuple[float, float]  # F1 and F2 offsets, Hz
    tilt: float  # one-pole low-pass coefficient on the source (higher: darker)
    open_quotient: float  # open phase in periods of PULSE_REFERENCE_HZ (higher: weaker upper harmonics)
    bandwidth_scale: float
    nasal: float  # gain of the nasal murmur (a low resonance beside the oral formants)
    rate: float  # syllables per second

    @classmethod
    def from_knobs(cls, knobs: np.ndarray, rate_knob: float) -> VoiceTraits:
        k = dict(zip(VOICE_KNOBS, np.asarray(knobs, dtype=np.float64), strict=True))
        return cls(
            f0=float(155.0 * np.exp(0.33 * k["pitch"])),
            formant_scale=float(np.exp(-0.075 * k["tract"])),
            jitter=float(0.006 * np.exp(0.45 * k["jitter"])),
            # Period-to-period jitter alone is invisible in a 25 ms fbank frame; a tremor of the same knob
            # (as in older voices) is not, so that an encoder can read it.
            # Issue 22: a supervised reader read the 5.5 Hz, 2% tremor at R² 0.50 (lost among syllable accents);
            # deeper and faster, it stays apart from the rhythm.
            tremor=float(np.clip(0.05 * np.exp(0.4 * k["jitter"]), 0.0, 0.2)),
            breath=float(0.12 * np.exp(0.6 * k["breath"])),
            accent=(float(45.0 * k["accent1"]), float(110.0 * k["accent2"])),
            # Issue 22: read at R² 0.47 before. A static slope is what mean normalisation removes and a channel's EQ
            # mimics, so the slope is steeper (0.28 per knob, was 0.18) and the glottal open quotient moves with it
            # (darker voices, longer open phase), which shows in the lowest harmonics' balance; with the pulse's
            # length no longer following the pitch (PULSE_REFERENCE_HZ) a reader reaches 0.81.
            tilt=float(np.clip(0.55 + 0.28 * k["tilt"], 0.02, 0.97)),
            open_quotient=float(np.clip(0.6 + 0.13 * k["tilt"], 0.3, 0.95)),
            bandwidth_scale=float(np.exp(0.45 * k["nasal"])),
            # a gentler sigmoid than 1.5 k: the murmur still grows at the knob's extremes
            nasal=float(1.6 / (1.0 + np.exp(-1.2 * k["nasal"]))),
            rate=float(4.5 * np.exp(0.15 * rate_knob)),
        )


@dataclass(frozen=True)
class Channel:
    """A recording channel: one per video."""

    eq_freq: float
    eq_gain_db: float
    lowpass: float
    rt60: float
    reverb_mix: float
    snr_db: float
    noise_colour: float

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Channel:
        return cls(eq_freq=float(np.exp(rng.uniform(np.log(250), np.log(4000)))), eq_gain_db=float(rng.uniform(-5, 5)),
                   lowpass=float(rng.uniform(3400, 7600)), rt60=float(rng.uniform(0.1, 0.6)),
                   reverb_mix=float(rng.uniform(0.05, 0.35)), snr_db=float(rng.uniform(12, 35)),
                   noise_colour=float(rng.uniform(0.0, 0.95)))


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    """Moving average in O(n) (cumulative sums)."""
    c = np.cumsum(np.concatenate([[0.0], x]))
    half = width // 2
    idx = np.arange(len(x))
    lo, hi = np.clip(idx - half, 0, len(x)), np.clip(idx + half + 1, 0, len(x))
    return (c[hi] - c[lo]) / (hi - lo)


def _timeline(n: int, rate: float, rng: np.random.Generator, sr: int):
    """Syllables as (start, consonant end, end, vowel index, pitch accent), with phrase pauses."""
    syllables, t = [], int(rng.uniform(0.05, 0.3) * sr)
    while t < n:
        for _ in range(int(rng.integers(3, 9))):
            length = int(sr / rate * rng.uniform(0.7, 1.3))
            consonant = int(rng.uniform(0.03, 0.09) * sr) if rng.random() < 0.6 else 0
            syllables.append((t, t + consonant, min(t + length, n), int(rng.integers(len(VOWELS))),
                              float(rng.uniform(0.94, 1.12))))
            t += length
            if t >= n:
                break
        t += int(rng.uniform(0.1, 0.4) * sr)
    return syllables


def render_voice(traits: VoiceTraits, channel: Channel, seconds: float, rng: np.random.Generator,
                 sr: int = SAMPLE_RATE) -> np.ndarray:
    """One clip: float32 mono waveform of ``seconds`` at ``sr``, peak below 1."""
    n = int(seconds * sr)
    syllables = _timeline(n, traits.rate, rng, sr)
    voiced, unvoiced, accent = np.zeros(n), np.zeros(n), np.ones(n)
    for start, vowel_start, end, _, bump in syllables:
        unvoiced[start:vowel_start] = 1.0
        voiced[vowel_start:end] = 1.0
        accent[start:end] = bump
    ramp = int(0.012 * sr)
    voiced, unvoiced = _smooth(voiced, ramp), _smooth(unvoiced, ramp // 2)
    # Pitch: phrase declination, syllable accents, tremor and per-period jitter.
    declination = 1.06 - 0.12 * (np.arange(n) / n)
    jitter = np.repeat(rng.standard_normal(n // 80 + 1), 80)[:n] * traits.jitter
    tremor = traits.tremor * np.sin(2 * np.pi * TREMOR_HZ * np.arange(n) / sr + rng.uniform(0, 2 * np.pi))
    f0 = traits.f0 * declination * _smooth(accent, int(0.05 * sr)) * (1 + jitter + tremor)
    phase = np.cumsum(f0) / sr % 1.0
    open_q = np.minimum(traits.open_quotient * f0 / PULSE_REFERENCE_HZ, 0.95)  # as a share of each period
    flow = np.where(phase < open_q, 0.5 - 0.5 * np.cos(2 * np.pi * phase / open_q), 0.0)
    excitation = np.diff(flow, prepend=0.0)
    excitation /= excitation.std() + 1e-9
    # Shimmer, and the tremor's loudness side (vocal tremor moves both pitch and amplitude).
    shimmer = (1 + 0.08 * np.repeat(rng.standard_normal(n // 120 + 1), 120)[:n]) * (1 + 3 * tremor)
    # The tilt shapes the glottal pulses only; aspiration noise, made at the glottis too, keeps its own spectrum,
    # so that breath and tilt do not move one and the same slope.
    pulses = signal.lfilter([1 - traits.tilt], [1, -traits.tilt], excitation * shimmer)
    pulses /= pulses.std() + 1e-9
    # Aspiration follows the flow; normalised, so that its level is the breath knob's alone and not the share of
    # each period the folds are open (which grows with the pitch).
    airflow = 0.4 + flow
    source = (pulses + traits.breath * 3.0 * rng.standard_normal(n) * airflow / np.sqrt((airflow**2).mean())) * voiced
    # Formant cascade, re-tuned at every syllable, the filter state carried across.
    speech = np.empty(n)
    state = np.zeros((4, 2))
    boundaries = [0] + [s for s, *_ in syllables[1:]] + [n]
    for (start, end), (_, _, _, vowel, _) in zip(zip(boundaries[:-1], boundaries[1:], strict=True), syllables,
                                                 strict=True):
        formants = VOWELS[vowel] * traits.formant_scale
        formants[:2] += traits.accent
        formants = np.clip(formants, 150, sr / 2 - 400)
        sos = _resonators(formants, BANDWIDTHS * traits.bandwidth_scale, sr)
        speech[start:end], state = signal.sosfilt(sos, source[start:end], zi=state)
    murmur = signal.sosfilt(_resonators(np.array([270.0]), np.array([90.0]), sr), source)
    speech = speech / (speech.std() + 1e-9) + traits.nasal * murmur / (murmur.std() + 1e-9)
    consonants = signal.lfilter([1, -1], [1, -0.3], rng.standard_normal(n)) * unvoiced * 0.25
    speech = speech / (speech.std() + 1e-9) + consonants
    return apply_channel(speech, channel, rng, sr)


def _resonators(formants: np.ndarray, bandwidths: np.ndarray, sr: int) -> np.ndarray:
    """Second-order sections of unit-DC-gain resonators (Klatt)."""
    r = np.exp(-np.pi * bandwidths / sr)
    theta = 2 * np.pi * formants / sr
    a1, a2 = -2 * r * np.cos(theta), r**2
    gain = 1 + a1 + a2
    return np.stack([gain, np.zeros_like(r), np.zeros_like(r), np.ones_like(r), a1, a2], axis=1)


def apply_channel(speech: np.ndarray, channel: Channel, rng: np.random.Generator, sr: int = SAMPLE_RATE) -> np.ndarray:
    """EQ peak, band limit, reverberation and noise at the channel's SNR; peak-normalised float32."""
    b, a = _peaking(channel.eq_freq, channel.eq_gain_db, 1.0, sr)
    x = signal.lfilter(b, a, speech)
    x = signal.sosfilt(signal.butter(4, channel.lowpass, fs=sr, output="sos"), x)
    tail = int(channel.rt60 * sr)
    impulse = rng.standard_normal(tail) * np.exp(-6.9 * np.arange(tail) / tail)
    wet = signal.fftconvolve(x, impulse)[: len(x)]
    x = x + channel.reverb_mix * wet / (wet.std() + 1e-9) * x.std()
    noise = signal.lfilter([1.0], [1.0, -channel.noise_colour], rng.standard_normal(len(x)))
    x = x + noise / (noise.std() + 1e-9) * x.std() * 10 ** (-channel.snr_db / 20)
    x *= rng.uniform(0.3, 0.9) / (np.abs(x).max() + 1e-9)
    return x.astype(np.float32)


def _peaking(freq: float, gain_db: float, q: float, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """RBJ audio-EQ-cookbook peaking filter."""
    amp, w0 = 10 ** (gain_db / 40), 2 * np.pi * freq / sr
    alpha = np.sin(w0) / (2 * q)
    b = np.array([1 + alpha * amp, -2 * np.cos(w0), 1 - alpha * amp])
    a = np.array([1 + alpha / amp, -2 * np.cos(w0), 1 - alpha / amp])
    return b / a[0], a / a[0]
