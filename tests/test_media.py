import logging
import math
import struct
import zlib

import kaldi_native_fbank as knf
import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from voxface.errors import ConfigError, MediaError
from voxface.formats import AUDIO_SUFFIXES
from voxface.media import (
    IdentityBatchSampler,
    KaldiFbank,
    PairConfig,
    PairDataset,
    SpecAugment,
    collate_pairs,
    face_to_tensor,
    read_face,
    read_voice,
)
from voxface.media import dataset as dataset_module
from voxface.media.audio import MIN_VOICE_DBFS, level_dbfs
from voxface.protocol import build_manifest, load_protocol
from voxface.testing import make_tiny_voxceleb


def speech_like(seconds: float, rate: int = 16000, seed: int = 0, f0: float = 120.0) -> np.ndarray:
    """A harmonic source with gliding pitch, syllable-rate envelope, formant-ish colouring and noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    pitch = f0 * (1 + 0.2 * np.sin(2 * np.pi * 1.5 * t + seed))
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    formants = (700 + 300 * np.sin(2 * np.pi * 2 * t), 1200 + 500 * np.cos(2 * np.pi * 3 * t))
    source = sum(np.sin(h * phase) / h * sum(np.exp(-((h * pitch - f) / 150) ** 2) for f in formants)
                 for h in range(1, 40))
    envelope = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) ** 2 + 0.02
    return (0.2 * source * envelope + 0.002 * rng.standard_normal(len(t))).astype(np.float32)


def kaldi_reference(wave: np.ndarray) -> np.ndarray:
    opts = knf.FbankOptions()
    opts.frame_opts.dither = 0.0
    opts.mel_opts.num_bins = 80
    fbank = knf.OnlineFbank(opts)
    fbank.accept_waveform(16000, (wave * 32768).tolist())  # Kaldi expects int16-scale samples
    fbank.input_finished()
    return np.stack([fbank.get_frame(i) for i in range(fbank.num_frames_ready)])


# ---------------------------------------------------------------- audio


def test_crop_reads_only_the_crop(tmp_path, monkeypatch):
    path = tmp_path / "long.wav"
    sf.write(path, speech_like(10.0), 16000)
    requested = []
    original = sf.SoundFile.read

    def spy(self, frames=-1, *args, **kwargs):
        requested.append(frames)
        return original(self, frames, *args, **kwargs)

    monkeypatch.setattr(sf.SoundFile, "read", spy)
    wave = read_voice(path, 2.0, np.random.default_rng(0))
    assert wave.shape == (32000,) and wave.dtype == np.float32
    assert requested == [32000]  # never the whole 160000-frame file


def test_crop_positions_are_random_and_seeded(tmp_path):
    path = tmp_path / "ramp.wav"
    sf.write(path, np.linspace(-0.9, 0.9, 16000 * 6).astype(np.float32), 16000, subtype="FLOAT")
    starts = {float(read_voice(path, 2.0, np.random.default_rng(s))[0]) for s in range(8)}
    assert len(starts) > 4
    again = read_voice(path, 2.0, np.random.default_rng(3))
    assert np.array_equal(again, read_voice(path, 2.0, np.random.default_rng(3)))
    centre = read_voice(path, 2.0, None)  # no rng: the centre crop
    assert abs(float(centre[16000])) < 0.01


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_resampling_keeps_pitch(tmp_path, rate):
    t = np.arange(int(rate * 3)) / rate
    path = tmp_path / f"tone{rate}.wav"
    sf.write(path, (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), rate)
    wave = read_voice(path, 2.0, np.random.default_rng(0))
    assert wave.shape == (32000,)
    spectrum = np.abs(np.fft.rfft(wave))
    assert abs(np.argmax(spectrum) * 16000 / len(wave) - 440) < 2


def test_stereo_downmix_and_loop_padding(tmp_path):
    left = np.full(8000, 0.5, dtype=np.float32)
    path = tmp_path / "short_stereo.wav"
    sf.write(path, np.stack([left, -0.25 * np.ones(8000, np.float32)], axis=1), 16000, subtype="FLOAT")
    wave = read_voice(path, 2.0, np.random.default_rng(0))
    assert wave.shape == (32000,)
    np.testing.assert_allclose(wave, 0.125, atol=1e-6)  # mean of the two channels, looped 4 times
    ramp = tmp_path / "ramp.wav"
    sf.write(ramp, np.arange(4000, dtype=np.float32) / 4000, 16000, subtype="FLOAT")
    looped = read_voice(ramp, 0.6, np.random.default_rng(0))
    assert looped.shape == (9600,)
    np.testing.assert_allclose(looped[4000:8000], looped[:4000])
    blip = tmp_path / "blip.wav"  # 0.05 s: too short for any encoder, one line instead of a padding crash
    sf.write(blip, np.zeros(800, dtype=np.float32), 16000)
    with pytest.raises(MediaError, match=r"the clip lasts 0\.05 s; voxface needs at least 0\.25 s of audio"):
        read_voice(blip, None, None)


def test_whole_clip_and_bad_audio(tmp_path, tiny):
    path = tmp_path / "clip.wav"
    sf.write(path, speech_like(3.3), 16000)
    assert read_voice(path, None).shape == (52800,)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), 16000)
    with pytest.raises(MediaError, match=r"empty.wav: empty audio"):
        read_voice(empty)
    with pytest.raises(MediaError, match="cannot read audio"):
        read_voice(tiny.roots.voice(tiny.corrupt_voice))
    with pytest.raises(MediaError, match="does not exist"):
        read_voice(tmp_path / "missing.wav")


def test_truncated_clips_are_named_and_the_minimum_counts_what_decodes(tmp_path):
    whole = tmp_path / "whole.wav"
    sf.write(whole, speech_like(2.0), 16000, subtype="PCM_16")  # 32000 frames of 2 bytes after a 44-byte header
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole.read_bytes()[:44 + 2 * 16000])  # half its data cut off, as an interrupted copy leaves it
    for crop in (None, 2.0, 0.5):
        with pytest.raises(MediaError) as caught:
            read_voice(cut, crop, np.random.default_rng(0))
        assert str(caught.value) == (f"{cut}: header says 32000 frames, only 16000 could be read (truncated?); copy "
                                     "or export the file again")
    sf.write(tmp_path / "whole.aiff", speech_like(2.0), 16000, subtype="PCM_16")
    aiff = (tmp_path / "whole.aiff").read_bytes()
    (tmp_path / "cut.aiff").write_bytes(aiff[:len(aiff) - 2 * 20000])
    with pytest.raises(MediaError, match=r"cut.aiff: header says 32000 frames, only 12000 could be read \(truncated"):
        read_voice(tmp_path / "cut.aiff", None)
    sf.write(tmp_path / "whole.flac", speech_like(2.0), 16000)  # a cut FLAC fails to decode where its data stop
    flac = (tmp_path / "whole.flac").read_bytes()
    (tmp_path / "cut.flac").write_bytes(flac[:len(flac) // 2])
    with pytest.raises(MediaError, match=r"cut.flac: header says 32000 frames, only \d+ could be read \(truncated"):
        read_voice(tmp_path / "cut.flac", None)
    # a 1 s clip cut to 0.2 s: the message names the cut, not a minimum its header would pass
    sf.write(tmp_path / "second.wav", speech_like(1.0), 16000, subtype="PCM_16")
    (tmp_path / "short.wav").write_bytes((tmp_path / "second.wav").read_bytes()[:44 + 2 * 3200])
    with pytest.raises(MediaError, match=r"short.wav: header says 16000 frames, only 3200 could be read"):
        read_voice(tmp_path / "short.wav", 2.0)
    # a streaming writer's header (sizes left at 0xFFFFFFFF: no promise) reads what the file holds
    streamed = bytearray((tmp_path / "second.wav").read_bytes())
    streamed[4:8] = streamed[40:44] = b"\xff\xff\xff\xff"
    (tmp_path / "streamed.wav").write_bytes(bytes(streamed))
    assert read_voice(tmp_path / "streamed.wav", None).shape == (16000,)
    assert read_voice(whole, None).shape == (32000,)  # whole files are untouched


def test_clips_without_a_voice_are_bad_files(tmp_path):
    speech = speech_like(3.0)
    quiet = speech / np.sqrt(np.mean(speech.astype(np.float64) ** 2)) * 10 ** (-50 / 20)  # speech at -50 dBFS
    sf.write(tmp_path / "quiet.wav", quiet, 16000, subtype="PCM_16")
    assert abs(level_dbfs(read_voice(tmp_path / "quiet.wav", None)) + 50) < 0.1  # quiet speech is read
    sf.write(tmp_path / "zeros.wav", np.zeros(48000, np.float32), 16000, subtype="PCM_16")
    with pytest.raises(MediaError, match=r"zeros.wav: no voice to score: the clip is digital silence, below the -60 "):
        read_voice(tmp_path / "zeros.wav", None)
    sf.write(tmp_path / "cancel.wav", np.stack([speech, -speech], axis=1), 16000, subtype="FLOAT")
    with pytest.raises(MediaError, match=r"cancel.wav: no voice.*its 2 channels cancel when mixed to mono"):
        read_voice(tmp_path / "cancel.wav", 2.0, np.random.default_rng(0))
    hiss = np.random.default_rng(0).standard_normal(48000) * 10 ** (-70 / 20)  # a muted input's noise, -70 dBFS
    sf.write(tmp_path / "hiss.wav", hiss.astype(np.float32), 16000, subtype="FLOAT")
    with pytest.raises(MediaError, match=r"hiss.wav: no voice to score: the clip is -70 dBFS.*loudnorm"):
        read_voice(tmp_path / "hiss.wav", None)
    # Speech then silence: the level is judged on what was read, so a crop on the silence is the bad read
    # (PairDataset's retry draws again), the whole clip and a crop on the speech are not.
    sf.write(tmp_path / "pause.wav", np.concatenate([speech[:16000], np.zeros(32000, np.float32)]), 16000)
    assert read_voice(tmp_path / "pause.wav", None).shape == (48000,)
    with pytest.raises(MediaError, match=r"pause.wav: no voice to score: the 1.00 s read from 1.00 s is digital"):
        read_voice(tmp_path / "pause.wav", 1.0)  # the centre crop: 1-2 s
    outcomes = set()
    for seed in range(12):
        try:
            read_voice(tmp_path / "pause.wav", 1.0, np.random.default_rng(seed))
            outcomes.add("read")
        except MediaError:
            outcomes.add("silent")
    assert outcomes == {"read", "silent"}


def test_voxsynth_clips_are_far_above_the_voice_level(tiny_run):
    """Every VoxSynth clip is read whole, and its quietest 1 s stretch (training crops are 1-2 s) has 10 dB to spare."""
    root, _ = tiny_run
    clips = sorted((root / "voxsynth" / "wav").rglob("*.wav"))
    assert len(clips) > 300
    quietest = math.inf
    for clip in clips:
        read_voice(clip, None)
        wave, rate = sf.read(clip, dtype="float32")
        quietest = min(quietest, *(level_dbfs(wave[s:s + rate]) for s in range(0, len(wave) - rate + 1, rate // 10)))
    assert quietest > MIN_VOICE_DBFS + 10


def test_one_list_of_audio_formats(tmp_path):
    speech = speech_like(2.0)
    reference = None
    written = {".wav": {}, ".flac": {}, ".aiff": {}, ".aif": dict(format="AIFF"), ".au": {}, ".caf": {},
               ".w64": {}, ".rf64": dict(format="RF64"), ".mp3": dict(format="MP3", subtype="MPEG_LAYER_III"),
               ".ogg": dict(format="OGG", subtype="VORBIS"), ".oga": dict(format="OGG", subtype="VORBIS"),
               ".opus": dict(format="OGG", subtype="OPUS")}
    assert set(AUDIO_SUFFIXES) == set(written)  # what this machine's libsndfile reads (sf.available_formats())
    for suffix in AUDIO_SUFFIXES:
        path = tmp_path / f"clip{suffix}"
        options = written[suffix]
        lossy = options.get("format") in ("MP3", "OGG")
        sf.write(path, speech, 16000, **({"subtype": "PCM_16"} if not lossy and "subtype" not in options else {}),
                 **options)
        wave = read_voice(path, None)
        if reference is None:
            reference = wave
        if lossy:  # an encoder's delay and loss: the same clip, about as loud
            assert abs(len(wave) - len(reference)) < 4000 and abs(level_dbfs(wave) - level_dbfs(reference)) < 1.5
        else:
            np.testing.assert_allclose(wave, reference, atol=1e-4, err_msg=suffix)
    (tmp_path / "clip.m4a").write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(200))  # an AAC clip's header
    with pytest.raises(MediaError, match=r"clip.m4a: cannot read audio .*not \.m4a: convert to 16 kHz mono WAV, "
                                         r"e.g. ffmpeg -i clip.m4a -ac 1 -ar 16000 clip.wav"):
        read_voice(tmp_path / "clip.m4a")


# ---------------------------------------------------------------- fbank


def test_fbank_matches_kaldi_native_fbank():
    waves = [speech_like(2.0, seed=s, f0=f0) for s, f0 in ((0, 110.0), (1, 210.0), (2, 160.0))]
    ours, frames = KaldiFbank()(torch.from_numpy(np.stack(waves)))
    for b, wave in enumerate(waves):
        reference = kaldi_reference(wave)
        assert ours.shape[1] == reference.shape[0] == frames[b] == 198
        assert np.abs(ours[b].numpy() - reference).max() < 1e-3


def test_fbank_lengths_and_mean_norm():
    wave = torch.from_numpy(speech_like(2.0))
    batch = torch.stack([wave, torch.cat([wave[:16000], torch.zeros(16000)])])
    feats, frames = KaldiFbank(mean_norm=True)(batch, torch.tensor([32000, 16000]))
    assert frames.tolist() == [198, 98]
    assert feats[0].mean(0).abs().max() < 1e-4
    assert feats[1, :98].mean(0).abs().max() < 1e-4
    assert feats[1, 98:].abs().max() == 0  # padded frames zeroed, not counted in the mean
    raw, _ = KaldiFbank()(batch)
    np.testing.assert_allclose(feats[0], raw[0] - raw[0].mean(0), atol=1e-4)


# ---------------------------------------------------------------- SpecAugment


def test_specaugment_bounds_and_eval_mode():
    torch.manual_seed(0)
    feats = torch.randn(64, 200, 80) + 100.0
    aug = SpecAugment(max_time=5, max_freq=10).train()
    out = aug(feats)
    changed = out != feats
    assert changed.any()
    for b in range(64):
        rows = changed[b].all(dim=1).nonzero().flatten()  # fully masked frames
        cols = changed[b].all(dim=0).nonzero().flatten()  # fully masked channels
        assert len(rows) <= 5 and len(cols) <= 10
        if len(rows):
            assert rows.max() - rows.min() + 1 == len(rows)  # one contiguous run
        if len(cols):
            assert cols.max() - cols.min() + 1 == len(cols)
        # every changed cell lies in a masked row or column
        assert (changed[b] <= (changed[b].all(1)[:, None] | changed[b].all(0)[None, :])).all()
    widths = {int(changed[b].all(dim=1).sum()) for b in range(64)}
    assert len(widths) > 2  # per-sample random widths
    assert torch.equal(aug.eval()(feats), feats)


# ---------------------------------------------------------------- faces


@pytest.mark.parametrize("mode", ["RGB", "L", "LA", "RGBA", "P", "CMYK", "I;16", "1"])
def test_faces_of_any_mode_become_rgb(tmp_path, mode):
    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 255, (90, 70, 3), dtype=np.uint8))
    image = rgb.convert(mode) if mode not in ("I;16",) else rgb.convert("L").convert("I;16")
    path = tmp_path / ("face.jpg" if mode == "CMYK" else "face.png")
    image.save(path)
    face = read_face(path, 112)
    assert face.shape == (112, 112, 3) and face.dtype == np.uint8


def _picture(height: int = 48, width: int = 64) -> np.ndarray:
    """A test picture of 8x8 blocks in 40 colours: few enough for a palette, block-aligned for JPEG."""
    rng = np.random.default_rng(1)
    palette = rng.integers(0, 256, (40, 3), dtype=np.uint8)
    blocks = rng.integers(0, 40, (height // 8, width // 8))
    return palette[np.kron(blocks, np.ones((8, 8), dtype=int))]


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(width: int, height: int, depth: int, colour: int, rows: bytes) -> bytes:
    """A PNG written by hand (Pillow cannot write 16-bit colour, nor a header alone)."""
    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(rows))
            + _png_chunk(b"IEND", b""))


# Where the stored rows and columns lie in the upright picture, for each EXIF orientation (TIFF 6.0 tag 274):
# 6 is a phone held upright whose sensor is landscape, the usual "sideways" photo.
STORED = {1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
          5: lambda a: a.transpose(1, 0, 2), 6: lambda a: a[:, ::-1].transpose(1, 0, 2),
          7: lambda a: a[::-1, ::-1].transpose(1, 0, 2), 8: lambda a: a[::-1].transpose(1, 0, 2)}


def test_exif_orientation_gives_the_upright_picture(tmp_path):
    upright = _picture()
    Image.fromarray(upright).save(tmp_path / "upright.png")
    Image.fromarray(upright).save(tmp_path / "upright.jpg", quality=95)
    expected, expected_jpeg = read_face(tmp_path / "upright.png", 40), read_face(tmp_path / "upright.jpg", 40)
    for orientation, store in STORED.items():
        exif = Image.Exif()
        exif[0x0112] = orientation
        stored = Image.fromarray(np.ascontiguousarray(store(upright)))
        stored.save(tmp_path / f"o{orientation}.png", exif=exif)
        assert np.array_equal(read_face(tmp_path / f"o{orientation}.png", 40), expected), orientation
        stored.save(tmp_path / f"o{orientation}.jpg", exif=exif, quality=95)  # as phones save them
        difference = np.abs(read_face(tmp_path / f"o{orientation}.jpg", 40).astype(int) - expected_jpeg)
        assert difference.mean() < 0.5, orientation  # only JPEG's loss (measured at most 0.09 grey levels)
    Image.fromarray(np.ascontiguousarray(STORED[6](upright))).save(tmp_path / "untagged.png")
    assert np.abs(read_face(tmp_path / "untagged.png", 40).astype(int) - expected).mean() > 40  # sideways differs


def test_every_format_mode_and_depth_gives_the_same_picture(tmp_path):
    picture = _picture()
    grey = np.repeat(picture[..., :1], 3, axis=2)
    Image.fromarray(picture).save(tmp_path / "original.png")
    Image.fromarray(grey).save(tmp_path / "grey.png")
    original, original_grey = read_face(tmp_path / "original.png", 40), read_face(tmp_path / "grey.png", 40)
    image = Image.fromarray(picture)
    opaque = picture.shape[:2] + (1,)
    lossless = {
        "rgba.png": Image.fromarray(np.concatenate([picture, np.full(opaque, 255, np.uint8)], axis=2)),
        "palette.png": image.quantize(64), "palette.gif": image.quantize(64), "lossless.webp": image,
        "rgb.tif": image, "cmyk.tif": image.convert("CMYK"), "rgb.bmp": image,
    }
    options = {"lossless.webp": dict(lossless=True)}
    for name, stored in lossless.items():
        stored.save(tmp_path / name, **options.get(name, {}))
        assert np.array_equal(read_face(tmp_path / name, 40), original), name
    (tmp_path / "rgb16.png").write_bytes(_png(64, 48, 16, 2, b"".join(  # 16-bit colour, 8-bit values x 257
        b"\x00" + (row.astype(">u2") * 257).tobytes() for row in picture)))
    assert np.array_equal(read_face(tmp_path / "rgb16.png", 40), original)
    grey_files = {"l.png": Image.fromarray(grey[..., 0]), "la.png": Image.fromarray(grey[..., 0]).convert("LA"),
                  "i16.png": Image.fromarray(grey[..., 0].astype(np.uint16) * 257),
                  "i16.tif": Image.fromarray(grey[..., 0].astype(np.uint16) * 257)}
    for name, stored in grey_files.items():
        stored.save(tmp_path / name)
        assert np.array_equal(read_face(tmp_path / name, 40), original_grey), name
    for name, stored in (("q100.jpg", image), ("cmyk.jpg", image.convert("CMYK"))):  # lossy: the codec's loss only
        stored.save(tmp_path / name, quality=100, subsampling=0)
        difference = np.abs(read_face(tmp_path / name, 40).astype(int) - original)
        assert difference.mean() < 0.5 and difference.max() <= 2, name  # measured: 0.36 and 0.0 mean, 1 and 0 max


def test_sixteen_bit_maps_by_depth_and_transparency_composes_on_black(tmp_path):
    dark = np.arange(0, 2048, dtype=np.uint16).reshape(32, 64)  # a dark 16-bit picture: 0..2047 of 65535
    Image.fromarray(dark).save(tmp_path / "dark16.png")
    face = read_face(tmp_path / "dark16.png", 64)
    assert face.max() <= 7  # 2047 >> 8: still dark, not stretched to white by the picture's own range
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[..., :3] = 255  # white under every pixel ...
    rgba[:, :16, 3] = 0  # ... hidden on the left
    rgba[:, 16:, 3] = 128  # half covered on the right
    Image.fromarray(rgba).save(tmp_path / "cutout.png")
    face = read_face(tmp_path / "cutout.png", 32).astype(int)
    assert (face[:, :15] == 0).all() and (np.abs(face[:, 17:] - 128) <= 1).all()
    keyed = np.full((32, 32, 3), 200, np.uint8)
    keyed[:, :16] = (10, 20, 30)
    Image.fromarray(keyed).save(tmp_path / "keyed.png", transparency=(10, 20, 30))  # a PNG colour key
    face = read_face(tmp_path / "keyed.png", 32).astype(int)
    assert (face[:, :15] == 0).all() and (face[:, 17:] == 200).all()
    Image.fromarray(np.zeros((8, 8), np.float32)).save(tmp_path / "float.tif")
    with pytest.raises(MediaError, match=r"float.tif: cannot read image \(32-bit float samples have no fixed scale"):
        read_face(tmp_path / "float.tif")


def test_images_over_the_safety_limit_are_bad_files(tmp_path):
    # Headers alone (Pillow checks the size before decoding): 10000^2 pixels is over Image.MAX_IMAGE_PIXELS, where
    # Pillow only warns; 20000^2 is over twice that, where it refuses.
    for side in (10_000, 20_000):
        path = tmp_path / f"huge{side}.png"
        path.write_bytes(_png(side, side, 8, 0, b"\x00" * 16))
        with pytest.raises(MediaError, match=rf"huge{side}.png: image too large to read safely .*downscale it"):
            read_face(path)


def test_images_under_the_minimum_face_size_are_bad_files(tmp_path):
    from voxface.media.faces import MIN_FACE_PIXELS

    assert MIN_FACE_PIXELS == 16
    for width, height in ((1, 1), (15, 200), (200, 15)):
        path = tmp_path / f"small{width}x{height}.png"
        Image.fromarray(np.full((height, width, 3), 128, np.uint8)).save(path)
        with pytest.raises(MediaError, match=rf"^{path}: image of {width}x{height} pixels, too small to be a face: "
                                             r"voxface needs at least 16 pixels a side"):
            read_face(path)
    Image.fromarray(np.full((16, 20, 3), 128, np.uint8)).save(tmp_path / "smallest.png")
    assert read_face(tmp_path / "smallest.png").shape == (112, 112, 3)  # 16 px on the short side is enough


def test_face_tensor_normalisation_and_flip():
    face = np.zeros((4, 4, 3), np.uint8)
    face[:, 0] = 255
    tensor = face_to_tensor(face)
    assert tensor.shape == (3, 4, 4)
    assert tensor[:, :, 0].eq(1).all() and tensor[:, :, 1:].eq(-1).all()
    assert face_to_tensor(face, flip=True)[:, :, 3].eq(1).all()


def test_bad_faces(tiny, tmp_path):
    with pytest.raises(MediaError, match=r"9999999.jpg: cannot read image"):
        read_face(tiny.roots.face(tiny.corrupt_face))
    with pytest.raises(MediaError, match="does not exist"):
        read_face(tmp_path / "none.jpg")
    (tmp_path / "text.png").write_text("hello")
    with pytest.raises(MediaError, match="text.png"):
        read_face(tmp_path / "text.png")


# ---------------------------------------------------------------- dataset and sampler


def test_sampler_one_identity_per_batch_across_ranks():
    clips = [5, 1, 30, 7, 7, 0, 12, 3, 9, 2, 4, 8]
    full = list(IdentityBatchSampler(clips, batch_size=6, seed=1))
    assert len(full) == len(IdentityBatchSampler(clips, batch_size=6, seed=1))
    for batch in full:
        assert len(batch) == 6 and len({i for i, _, _ in batch}) == 6
    assert len(full) == sum(clips) // 6  # a fixed number of batches per epoch
    used = [(i, c) for batch in full for i, c, _ in batch]
    assert all(c < clips[i] for i, c in used)
    for identity in np.flatnonzero(clips):  # clips are consumed evenly: no clip twice before all are used once
        counts = np.bincount([c for i, c in used if i == identity], minlength=clips[identity])
        assert counts.max() - counts.min() <= 1
    ranks = [list(IdentityBatchSampler(clips, batch_size=3, seed=1, num_replicas=2, rank=r)) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1])
    for a, b in zip(*ranks, strict=True):
        assert len({i for i, _, _ in a + b}) == 6  # distinct over the global batch
        assert a + b in full  # the same global batches as one process with batch 6
    sampler = IdentityBatchSampler(clips, batch_size=6, seed=1)
    sampler.set_epoch(1)
    assert list(sampler) != full
    sampler.set_epoch(0)
    sampler.skip_next(4)
    assert list(sampler) == full[4:]  # resuming mid-epoch
    assert list(sampler) == full  # the skip applies to one pass only
    rest = list(IdentityBatchSampler(clips, batch_size=6, seed=1, drop_last=False))
    assert sum(map(len, rest)) == sum(clips)  # without drop_last every clip is used once


def test_identity_classes_batches_hold_k_pairs_of_each_of_p_identities_and_resume():
    clips = [5, 1, 30, 7, 7, 0, 12, 3, 9, 2, 4, 8]
    sampler = IdentityBatchSampler(clips, batch_size=8, seed=3, layout="identity_classes", per_identity=2)
    batches = list(sampler)
    assert len(batches) == len(sampler) == sum(clips) // 8
    for batch in batches:
        counts = np.bincount([i for i, _, _ in batch])
        assert len(batch) == 8 and sorted(counts[counts > 0].tolist()) == [2, 2, 2, 2]
        assert all(c < clips[i] for i, c, _ in batch) and 5 not in {i for i, _, _ in batch}  # 5 has no clips
        # an identity with two clips or more gives two different ones (one with a single clip repeats it)
        for identity in {i for i, _, _ in batch}:
            chosen = [c for i, c, _ in batch if i == identity]
            assert len(set(chosen)) == min(2, clips[identity])
    ranks = [list(IdentityBatchSampler(clips, batch_size=4, seed=3, num_replicas=2, rank=r, layout="identity_classes",
                                       per_identity=2)) for r in (0, 1)]
    assert [a + b for a, b in zip(*ranks, strict=True)] == batches  # one global batch over the ranks
    sampler.skip_next(3)
    assert list(sampler) == batches[3:]
    with pytest.raises(ConfigError, match="at least 2 pairs per identity, dividing the batch size"):
        IdentityBatchSampler(clips, batch_size=6, layout="identity_classes", per_identity=4)


def test_video_pairs_batches_are_uniform_clips_without_labels_in_their_making():
    clips = [5, 1, 30, 7]
    sampler = IdentityBatchSampler(clips, batch_size=4, seed=0, layout="video_pairs")
    batches = list(sampler)
    used = [(i, c) for batch in batches for i, c, _ in batch]
    assert len(batches) == len(sampler) == sum(clips) // 4 and all(len(b) == 4 for b in batches)
    assert len(set(used)) == len(used)  # each clip at most once an epoch
    assert any(len({i for i, _, _ in b}) < len(b) for b in batches)  # an identity may appear twice, as unlabelled
    everything = list(IdentityBatchSampler(clips, batch_size=4, seed=0, layout="video_pairs", drop_last=False))
    assert sorted((i, c) for b in everything for i, c, _ in b) == [(i, c) for i, n in enumerate(clips)
                                                                   for c in range(n)]


def test_batches_carry_clip_video_gender_and_nationality_indices(tiny):
    from voxface.training.data import CovariateCollate, label_space

    protocol = load_protocol(tiny.protocol_dir)
    manifest = build_manifest(protocol, tiny.roots)
    space, covariates = label_space(manifest, protocol)
    dataset = PairDataset(manifest, PairConfig(face_from_same_video=True))
    assert space.identities == len(manifest.identities) and space.clips == len(dataset)
    assert space.videos == sum(len(ident.videos) for ident in manifest.identities)
    sampler = IdentityBatchSampler(dataset.clips_per_identity, batch_size=4, seed=0, layout="video_pairs")
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=CovariateCollate(covariates))
    batch = next(iter(loader))
    flat = [(ident.name, ytid, clip) for ident in manifest.identities for ytid, video in ident.videos.items()
            for clip in video.voices]
    videos = list(dict.fromkeys((name, ytid) for name, ytid, _ in flat))
    for identity, clip, video, gender, nationality in zip(*(batch[k].tolist() for k in (
            "identity", "clip", "video", "gender", "nationality")), strict=True):
        name, ytid, _ = flat[clip]
        person = protocol.identities[name]
        assert manifest.identities[identity].name == name and videos[video] == (name, ytid)
        assert space.gender_names[gender] == person.gender
        assert space.nationality_names[nationality] == person.nationality


def test_sampler_rejects_impossible_batches():
    with pytest.raises(ConfigError, match="larger than the 3 identities"):
        IdentityBatchSampler([4, 0, 2, 9], batch_size=4)
    with pytest.raises(ConfigError, match="only possible with one process"):
        IdentityBatchSampler([4, 4, 4, 4], batch_size=2, num_replicas=2, drop_last=False)


def test_pair_dataset_batches(tiny):
    manifest = build_manifest(load_protocol(tiny.protocol_dir), tiny.roots)
    dataset = PairDataset(manifest, PairConfig(face_from_same_video=True))
    sampler = IdentityBatchSampler(dataset.clips_per_identity, batch_size=4, seed=0)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_pairs)
    batches = list(loader)
    assert batches
    for batch in batches:
        assert batch["wave"].shape == (4, 32000)
        assert batch["face"].shape == (4, 3, 112, 112)
        assert batch["face"].min() >= -1 and batch["face"].max() <= 1
        assert len(set(batch["identity"].tolist())) == 4
    key = next(iter(sampler))[0]
    assert torch.equal(dataset[key]["wave"], dataset[key]["wave"])  # the item seed fixes the crop
    with pytest.raises(MediaError, match="empty batch"):
        collate_pairs([])


def test_bad_files_are_replaced_logged_once_and_counted(tiny, caplog):
    manifest = build_manifest(load_protocol(tiny.protocol_dir), tiny.roots)
    first = manifest.identities[0]
    assert tiny.corrupt_voice in first.voices and tiny.corrupt_face in first.faces
    # Only bad files for this identity's first draws: point all its voices at the corrupt clip but one.
    dataset = PairDataset(manifest)
    bad_clip = dataset.voices[0].index(tiny.corrupt_voice)
    dataset_module._reported_bad_files.clear()
    with caplog.at_level(logging.WARNING, logger="voxface"):
        items = [dataset[(0, bad_clip, seed)] for seed in range(20)]
    assert all(item["identity"] == 0 and item["wave"].shape == (32000,) for item in items)
    assert all(item["skipped"] >= 1 for item in items)
    assert sum(item["skipped"] for item in items) == collate_pairs(items)["skipped"]
    warnings = [r.getMessage() for r in caplog.records if tiny.corrupt_voice in r.getMessage()]
    assert len(warnings) == 1  # logged once, with its path
    # An identity whose files are all bad fails with a message naming it.
    dataset.voices[0] = [tiny.corrupt_voice]
    with pytest.raises(MediaError, match=f"identity {first.name}"):
        dataset[(0, 0, 1)]


def test_silent_clips_are_replaced_in_training(tmp_path):
    tree = make_tiny_voxceleb(tmp_path / "tree", corrupt=False)
    manifest = build_manifest(load_protocol(tree.protocol_dir), tree.roots)
    silent = manifest.identities[0].voices[0]
    rate = sf.info(tree.roots.voice(silent)).samplerate
    sf.write(tree.roots.voice(silent), np.zeros(rate * 2), rate)  # a clip whose voice was lost
    dataset = PairDataset(manifest)
    items = [dataset[(0, 0, seed)] for seed in range(6)]
    assert all(item["skipped"] >= 1 for item in items)  # counted, and replaced by another clip of the identity
    assert all(level_dbfs(item["wave"].numpy()) > MIN_VOICE_DBFS for item in items)


def test_bad_media_in_score_app_and_evaluation(tiny_run, trained_checkpoint, tmp_path, capsys):
    """A silent clip and an image over Pillow's limit: one line in score and the app, counted and skipped by
    evaluation's reader; an MP3 voice is scored by both."""
    from fastapi.testclient import TestClient

    from voxface.app import create_app
    from voxface.cli import main
    from voxface.evaluation.api import VoiceFaceScorer

    root, _ = tiny_run
    voice = next((root / "voxsynth" / "wav").rglob("*.wav"))
    face = next((root / "voxsynth" / "unzippedFaces").rglob("*.jpg"))
    silent, huge, mp3 = tmp_path / "silent.wav", tmp_path / "huge.png", tmp_path / "voice.mp3"
    sf.write(silent, np.zeros(32000, np.float32), 16000)
    huge.write_bytes(_png(10_000, 10_000, 8, 0, b"\x00" * 16))
    wave, rate = sf.read(voice, dtype="float32")
    sf.write(mp3, wave, rate, format="MP3")
    for args, message in (([str(silent), str(face)], "silent.wav: no voice to score"),
                          ([str(voice), str(face), str(huge)], "huge.png: image too large to read safely")):
        assert main(["score", "--checkpoint", str(trained_checkpoint), *args]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"voxface: error: {tmp_path}/{message}") and err.count("\n") == 1, err
    assert main(["score", "--checkpoint", str(trained_checkpoint), str(mp3), str(face)]) == 0
    client = TestClient(create_app(trained_checkpoint))
    cases = {"silent.wav: no voice to score": (silent, face), "huge.png: image too large": (voice, huge)}
    for message, (v, f) in cases.items():
        upload = [("voice", (v.name, v.read_bytes())), ("faces", (f.name, f.read_bytes()))]
        answer = client.post("/api/rank", files=upload)
        assert answer.status_code == 400 and answer.json()["error"].startswith(message), answer.text
    answer = client.post("/api/rank", files=[("voice", (mp3.name, mp3.read_bytes())),
                                             ("faces", (face.name, face.read_bytes()))])
    assert answer.status_code == 200 and len(answer.json()["ranking"]) == 1
    listed = tmp_path / "faces.txt"  # embed's file list as a Windows editor saves it: a BOM, CRLF, trailing spaces
    listed.write_bytes(f"\ufeff{face}  \r\n\r\n{face}\t\r\n".encode())
    assert main(["embed", "--checkpoint", str(trained_checkpoint), "--files", str(listed), "--kind", "face",
                 "--out", str(tmp_path / "out")]) == 0
    assert np.load(tmp_path / "out.npy").shape[0] == 2
    embedder = VoiceFaceScorer(trained_checkpoint).embedder  # what evaluate reads with: bad files come back apart
    vectors, errors = embedder.embed([voice, silent, mp3], "voice")
    assert set(vectors) == {voice, mp3} and list(errors) == [silent]
    vectors, errors = embedder.embed([face, huge], "face")
    assert set(vectors) == {face} and "image too large" in errors[huge]


def test_speechbrain_fbank_matches_speechbrain():
    """SpeechBrain 1.1.2's Fbank(n_mels=80) + sentence mean normalisation on a fixed wave (fixture made by
    tests/fixtures/make_speechbrain_reference.py in a scratch SpeechBrain environment)."""
    from pathlib import Path

    from voxface.media.fbank import SpeechBrainFbank

    reference = np.load(Path(__file__).parent / "fixtures" / "speechbrain_reference.npz")
    wave = torch.from_numpy(reference["wave"])[None]
    raw, frames = SpeechBrainFbank(mean_norm=False)(wave)
    assert frames.tolist() == [reference["fbank"].shape[0]]
    # float32 dB values up to ~40: the FFT's rounding differs with the CPU's kernels (1.2e-4 seen on one machine),
    # so the tolerance is relative to the values (1e-5) on top of 1e-4
    np.testing.assert_allclose(raw[0].numpy(), reference["fbank"], rtol=1e-5, atol=1e-4)
    normalised, _ = SpeechBrainFbank()(wave)
    np.testing.assert_allclose(normalised[0].numpy(), reference["features"], rtol=1e-5, atol=1e-4)
    # a padded batch: the valid frames of the shorter utterance are its own features
    batch = torch.zeros(2, wave.shape[1] + 3200)
    batch[0], batch[1, : wave.shape[1]] = torch.randn(batch.shape[1]) * 0.1, wave[0]
    padded, frames = SpeechBrainFbank()(batch, torch.tensor([batch.shape[1], wave.shape[1]]))
    assert frames[1] == normalised.shape[1]
    assert np.abs(padded[1, : frames[1]].numpy() - normalised[0].numpy()).max() < 1e-3
