"""80-dim log-Mel filterbanks computed in torch on a whole batch: Kaldi's and SpeechBrain's.

torchaudio cannot be installed here (DESIGN.md §4), so both are reimplemented.

- ``KaldiFbank``: Kaldi's ``compute-fbank`` defaults: povey window, DC removal, pre-emphasis 0.97,
  snip-edges framing, power spectrum, Kaldi mel scale (1127·ln(1 + f/700)) from 20 Hz to Nyquist, int16
  sample scale, no dither. Tested against kaldi-native-fbank
  (tests/test_media.py::test_fbank_matches_kaldi_native_fbank).
- ``SpeechBrainFbank``: what SpeechBrain's ``spkrec-ecapa-voxceleb`` was trained on, ``Fbank(n_mels=80)``
  and sentence mean normalisation: Hamming window, 400-point FFT, centred (zero-padded) frames, power
  spectrum, HTK mel scale (2595·log10(1 + f/700)) from 0 Hz to Nyquist, 10·log10 with a floor of 1e-10 and
  each utterance clipped 80 dB below its maximum. Tested against SpeechBrain 1.1.2's own output
  (tests/test_media.py::test_speechbrain_fbank_matches_speechbrain, fixture made by
  tests/fixtures/make_speechbrain_reference.py).
"""

from __future__ import annotations

import math

import torch
from torch import nn

# Kaldi floors energies at the float32 epsilon before the log.
FLOAT_EPS = torch.finfo(torch.float32).eps


def kaldi_mel_banks(num_bins: int, padded_window: int, sample_rate: int, low_freq: float,
                    high_freq: float) -> torch.Tensor:
    """Triangular filters on Kaldi's mel scale, shape (num_bins, padded_window // 2 + 1).

    The Nyquist column is zero: Kaldi's filters span only the first padded_window // 2 bins.
    """
    def mel(freq: torch.Tensor) -> torch.Tensor:
        return 1127.0 * torch.log1p(freq / 700.0)

    nyquist = sample_rate / 2
    if high_freq <= 0:
        high_freq += nyquist
    num_fft_bins = padded_window // 2
    mel_low, mel_high = (mel(torch.tensor(f, dtype=torch.float64)) for f in (low_freq, high_freq))
    delta = (mel_high - mel_low) / (num_bins + 1)
    edges = mel_low + delta * torch.arange(num_bins + 2, dtype=torch.float64)
    left, center, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    bin_mel = mel(sample_rate / padded_window * torch.arange(num_fft_bins, dtype=torch.float64))[None, :]
    up = (bin_mel - left) / (center - left)
    down = (right - bin_mel) / (right - center)
    banks = torch.clamp(torch.minimum(up, down), min=0.0)
    return torch.nn.functional.pad(banks, (0, 1)).float()


class KaldiFbank(nn.Module):
    """Log-Mel filterbank features of a batch of waveforms.

    Arguments:
        sample_rate: of the input waveforms.
        num_mel_bins: output channels (80 in the paper).
        frame_length_ms, frame_shift_ms: 25 ms window, 10 ms hop (paper §5).
        mean_norm: subtract each utterance's mean over its valid frames.
        int16_scale: input is float in [-1, 1]; Kaldi works on int16-scale samples.

    Example:
        >>> fbank = KaldiFbank()
        >>> feats, frames = fbank(torch.randn(4, 32000) * 0.1, torch.tensor([32000, 32000, 24000, 16000]))
        >>> feats.shape, frames.tolist()
        (torch.Size([4, 198, 80]), [198, 198, 148, 98])
    """

    def __init__(self, sample_rate: int = 16_000, num_mel_bins: int = 80, frame_length_ms: float = 25.0,
                 frame_shift_ms: float = 10.0, preemphasis: float = 0.97, low_freq: float = 20.0,
                 high_freq: float = 0.0, mean_norm: bool = False, int16_scale: bool = True) -> None:
        super().__init__()
        # What rebuilds this front end exactly (recorded in training checkpoints)
        self.settings = dict(sample_rate=sample_rate, num_mel_bins=num_mel_bins, frame_length_ms=frame_length_ms,
                             frame_shift_ms=frame_shift_ms, preemphasis=preemphasis, low_freq=low_freq,
                             high_freq=high_freq, mean_norm=mean_norm, int16_scale=int16_scale)
        self.window_size = int(sample_rate * frame_length_ms / 1000)
        self.window_shift = int(sample_rate * frame_shift_ms / 1000)
        self.padded_window = 1 << math.ceil(math.log2(self.window_size))
        self.preemphasis = preemphasis
        self.mean_norm = mean_norm
        self.scale = 32768.0 if int16_scale else 1.0
        n = torch.arange(self.window_size, dtype=torch.float64)
        povey = (0.5 - 0.5 * torch.cos(2 * math.pi * n / (self.window_size - 1))) ** 0.85
        self.register_buffer("window", povey.float(), persistent=False)
        banks = kaldi_mel_banks(num_mel_bins, self.padded_window, sample_rate, low_freq, high_freq)
        self.register_buffer("mel_banks", banks, persistent=False)

    def num_frames(self, num_samples: torch.Tensor) -> torch.Tensor:
        """Frames Kaldi's snip-edges framing yields for each length (0 below one window)."""
        return torch.clamp((num_samples - self.window_size) // self.window_shift + 1, min=0)

    def forward(self, wave: torch.Tensor, lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T) waveforms (and valid lengths) -> (B, frames, mel) features and valid frame counts."""
        if wave.dim() == 1:
            wave = wave[None]
        if wave.shape[-1] < self.window_size:
            raise ValueError(f"waveform of {wave.shape[-1]} samples is shorter than one window "
                             f"({self.window_size} samples)")
        if lengths is None:
            lengths = torch.full((wave.shape[0],), wave.shape[-1], device=wave.device)
        frames = (wave.float() * self.scale).unfold(-1, self.window_size, self.window_shift)
        frames = frames - frames.mean(dim=-1, keepdim=True)
        previous = torch.cat([frames[..., :1], frames[..., :-1]], dim=-1)
        frames = (frames - self.preemphasis * previous) * self.window
        power = torch.fft.rfft(frames, n=self.padded_window).abs().pow(2)
        feats = torch.clamp(power @ self.mel_banks.T, min=FLOAT_EPS).log()
        frame_lengths = self.num_frames(lengths.to(wave.device))
        return (mean_normalise(feats, frame_lengths) if self.mean_norm else feats), frame_lengths


def mean_normalise(feats: torch.Tensor, frame_lengths: torch.Tensor) -> torch.Tensor:
    """Subtract each utterance's mean over its valid frames; padded frames become 0."""
    valid = (torch.arange(feats.shape[1], device=feats.device)[None] < frame_lengths[:, None]).unsqueeze(-1)
    mean = (feats * valid).sum(1, keepdim=True) / frame_lengths.clamp(min=1)[:, None, None]
    return (feats - mean) * valid


class SpeechBrainFbank(nn.Module):
    """SpeechBrain's ``Fbank(n_mels=80)`` (+ sentence mean normalisation): the input of its ECAPA checkpoints.

    Example:
        >>> fbank = SpeechBrainFbank()
        >>> feats, frames = fbank(torch.randn(2, 32000) * 0.1, torch.tensor([32000, 16000]))
        >>> feats.shape, frames.tolist()
        (torch.Size([2, 201, 80]), [201, 101])
    """

    def __init__(self, sample_rate: int = 16_000, num_mel_bins: int = 80, n_fft: int = 400,
                 frame_length_ms: float = 25.0, frame_shift_ms: float = 10.0, top_db: float = 80.0,
                 amin: float = 1e-10, mean_norm: bool = True) -> None:
        super().__init__()
        # What rebuilds this front end exactly (recorded in training checkpoints)
        self.settings = dict(sample_rate=sample_rate, num_mel_bins=num_mel_bins, n_fft=n_fft,
                             frame_length_ms=frame_length_ms, frame_shift_ms=frame_shift_ms, top_db=top_db, amin=amin,
                             mean_norm=mean_norm)
        self.n_fft, self.top_db, self.amin, self.mean_norm = n_fft, top_db, amin, mean_norm
        self.window_size = int(round(sample_rate * frame_length_ms / 1000))
        self.window_shift = int(round(sample_rate * frame_shift_ms / 1000))
        self.register_buffer("window", torch.hamming_window(self.window_size), persistent=False)

        def mel(hz: float) -> float:
            return 2595 * math.log10(1 + hz / 700)

        edges = 700 * (10 ** (torch.linspace(mel(0.0), mel(sample_rate / 2), num_mel_bins + 2) / 2595) - 1)
        center, width = edges[1:-1], (edges[1:] - edges[:-1])[:-1]  # symmetric triangles, left-edge width
        freqs = torch.linspace(0, sample_rate // 2, n_fft // 2 + 1)
        slope = (freqs[:, None] - center[None]) / width[None]
        self.register_buffer("mel_banks", torch.clamp(torch.minimum(slope + 1, 1 - slope), min=0.0), persistent=False)

    def num_frames(self, num_samples: torch.Tensor) -> torch.Tensor:
        """Centred framing: one frame per hop, plus one."""
        return num_samples // self.window_shift + 1

    def forward(self, wave: torch.Tensor, lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T) waveforms (and valid lengths) -> (B, frames, mel) features and valid frame counts."""
        if wave.dim() == 1:
            wave = wave[None]
        if lengths is None:
            lengths = torch.full((wave.shape[0],), wave.shape[-1], device=wave.device)
        spectrum = torch.stft(wave.float(), self.n_fft, self.window_shift, self.window_size, self.window,
                              center=True, pad_mode="constant", return_complex=True)
        power = spectrum.abs().pow(2).transpose(1, 2)  # (B, frames, bins)
        db = 10 * torch.log10(torch.clamp(power @ self.mel_banks, min=self.amin))
        db = torch.maximum(db, db.amax(dim=(1, 2), keepdim=True) - self.top_db)  # per utterance, as SpeechBrain
        frame_lengths = self.num_frames(lengths.to(wave.device))
        return (mean_normalise(db, frame_lengths) if self.mean_norm else db), frame_lengths


FBANKS: dict[str, type[KaldiFbank] | type[SpeechBrainFbank]] = {"kaldi": KaldiFbank, "speechbrain": SpeechBrainFbank}
