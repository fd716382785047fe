"""Tiny data trees in the real VoxCeleb1 layout, for tests and benchmarks.

``make_tiny_voxceleb`` writes a handful of identities with WAVs of mixed sample rates, channel
counts and lengths, JPG and PNG faces of mixed image modes, one corrupt file of each kind, and a
protocol folder (metadata, splits, all ten veriflists, all eight matching lists) in the real formats.
Each identity's voice has its own pitch and each face its own colour, so a model can tell them apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

from voxface.protocol.layout import DataRoots
from voxface.protocol.lists import (
    MATCHING_DIRECTIONS,
    MATCHING_GROUPS,
    SPLIT_TEST,
    SPLIT_TRAIN,
    SPLIT_VAL,
    VERIFICATION_GROUPS,
    Identity,
)
from voxface.protocol.writer import old_voice_path, write_matching, write_meta, write_splits, write_verification

SAMPLE_RATES = (16_000, 22_050, 44_100, 8_000)
IMAGE_MODES = {".jpg": ("RGB", "L", "CMYK"), ".png": ("RGBA", "P", "L", "RGB")}  # what each format stores


@dataclass
class TinyTree:
    root: Path
    protocol_dir: Path
    roots: DataRoots
    corrupt_voice: str  # relative to the audio root
    corrupt_face: str  # relative to the face root


def make_tiny_voxceleb(root: str | Path, train: int = 4, val: int = 2, test: int = 2, videos: int = 3,
                       clips: int = 2, frames: int = 2, seed: int = 0, corrupt: bool = True,
                       face_size: int = 128) -> TinyTree:
    root = Path(root)
    rng = np.random.default_rng(seed)
    roots = DataRoots.from_root(root)
    splits = [SPLIT_TRAIN] * train + [SPLIT_VAL] * val + [SPLIT_TEST] * test
    identities, media = [], {}
    for k, split in enumerate(splits):
        ident = Identity(f"id1{k + 1:04d}", f"Person_{chr(65 + k)}.{k}", "mf"[k % 2], ["USA", "UK", "India"][k % 3],
                         "dev" if split != SPLIT_TEST else "test", age=25 + 7 * k)
        identities.append(ident)
        pitch, colour = 90.0 + 25.0 * k, rng.integers(40, 220, size=3)
        media[ident.name] = {}
        for v in range(videos):
            ytid = f"v{k}_{v}-x" if v == 0 else f"{'_' if v == 1 else ''}vid{k}{v}abcd"  # ytids may hold '_'
            voices, faces = [], []
            for c in range(clips):
                rate = SAMPLE_RATES[(k + v + c) % len(SAMPLE_RATES)]
                seconds = [1.2, 2.5, 4.0][(k + c) % 3]
                rel = f"{ident.vox_id}/{ytid}/{c + 1:05d}.wav"
                _write_tone(roots.voice(rel), rate, seconds, pitch, channels=1 + (k + c) % 2, rng=rng)
                voices.append(rel)
            for f in range(frames):
                suffix = ".png" if (v + f) % 2 else ".jpg"
                modes = IMAGE_MODES[suffix]
                mode = modes[(k + v) % len(modes)]
                rel = f"{ident.name}/1.6/{ytid}/{(f + 1) * 25:07d}{suffix}"
                _write_face(roots.face(rel), colour, mode, face_size, rng)
                faces.append(rel)
            media[ident.name][ytid] = (voices, faces)
    corrupt_voice = corrupt_face = ""
    if corrupt:
        first = identities[0]
        ytid = list(media[first.name])[-1]
        corrupt_voice = f"{first.vox_id}/{ytid}/{clips + 1:05d}.wav"
        roots.voice(corrupt_voice).write_bytes(b"RIFF\x10\x00\x00\x00WAVEgarbage" + bytes(50))
        media[first.name][ytid][0].append(corrupt_voice)
        corrupt_face = f"{first.name}/1.6/{ytid}/9999999.jpg"
        good = roots.face(media[first.name][ytid][1][0]).read_bytes()
        roots.face(corrupt_face).write_bytes(good[: len(good) // 3] if good[:2] == b"\xff\xd8" else b"\xff\xd8junk")
        media[first.name][ytid][1].append(corrupt_face)
    protocol_dir = root / "protocol"
    write_meta(protocol_dir, identities)
    write_splits(protocol_dir, {i.name: s for i, s in zip(identities, splits, strict=True)})
    _write_lists(protocol_dir, identities, splits, media)
    return TinyTree(root, protocol_dir, roots, corrupt_voice, corrupt_face)


def _write_tone(path: Path, rate: int, seconds: float, pitch: float, channels: int, rng: np.random.Generator) -> None:
    t = np.arange(int(rate * seconds)) / rate
    f0 = pitch * (1 + 0.05 * np.sin(2 * np.pi * 3 * t))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    wave = sum(np.sin(h * phase) / h for h in range(1, 8)) * 0.1 + 0.01 * rng.standard_normal(len(t))
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.repeat(wave[:, None], channels, axis=1).astype(np.float32), rate, subtype="PCM_16")


def _write_face(path: Path, colour: np.ndarray, mode: str, size: int, rng: np.random.Generator) -> None:
    pixels = np.clip(colour + rng.normal(0, 12, size=(size, size, 3)), 0, 255).astype(np.uint8)
    pixels[size // 3: size // 3 + 8, size // 4: 3 * size // 4] = 20  # an "eye line"
    image = Image.fromarray(pixels, mode="RGB")
    image = image.convert("P", palette=Image.Palette.ADAPTIVE) if mode == "P" else image.convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def _write_lists(folder: Path, identities: list[Identity], splits: list[int],
                 media: dict[str, dict[str, tuple[list[str], list[str]]]]) -> None:
    """Seen-heard trials on the first video of each train identity; unseen-unheard on test ones."""
    def trials(people: list[Identity], same_video: bool):
        rows = []
        for i, person in enumerate(people):
            other = people[(i + 1) % len(people)]
            ytid, (voices, faces) = next(iter(media[person.name].items()))
            face_video = ytid if same_video else list(media[person.name])[1]
            voice = old_voice_path(person.name, ytid, voices[0])
            for face_person, video in ((person, face_video), (other, next(iter(media[other.name])))):
                face_rel = media[face_person.name][video][1][0]  # <Name>/1.6/<ytid>/<frame>
                name, _, yt, frame = face_rel.split("/")
                rows.append((person.number, face_person.number, voice, f"{name}/{yt}/{frame}"))
        return rows

    seen = [i for i, s in zip(identities, splits, strict=True) if s == SPLIT_TRAIN]
    unseen = [i for i, s in zip(identities, splits, strict=True) if s == SPLIT_TEST]
    for group in VERIFICATION_GROUPS:
        write_verification(folder, group, "seenheard", trials(seen, same_video=True))
        write_verification(folder, group, "unseenunheard", trials(unseen, same_video=False))
    for direction in MATCHING_DIRECTIONS:
        for group in MATCHING_GROUPS:
            rows = []
            for i, person in enumerate(unseen):
                other = unseen[(i + 1) % len(unseen)]
                voices, faces = next(iter(media[person.name].values()))
                other_voices, other_faces = next(iter(media[other.name].values()))
                rows.append((voices[0], faces[0], other_faces[0]) if direction == "v2f"
                            else (faces[0], voices[0], other_voices[0]))
            write_matching(folder, direction, group, rows)
