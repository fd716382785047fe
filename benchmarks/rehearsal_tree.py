"""A VoxCeleb1-shaped data tree for full-size rehearsals, built from the shipped protocol with hard links.

``build_rehearsal_tree(fraction, out)`` lays out, under ``out``:

- ``pool/``: a few dozen rendered VoxSynth clips and face crops of VoxCeleb1's typical shape (16 kHz mono PCM WAV
  of 4 s and more, 8.2 s on average; 224 x 224 JPEG). Content does not matter for what a rehearsal measures, decoding
  does: every file of the tree is a hard link to one of these;
- ``data/wav/<id1xxxx>/<ytid>/<5 digits>.wav`` and ``data/unzippedFaces/<Name>/1.6/<ytid>/<frame>.jpg``: every clip
  and frame the kept trials of the ten veriflists and eight matching lists name, at its released path (the lists'
  old voice names mapped as ``voxface.protocol.lists`` maps them), and for the training and validation identities
  further videos under generated YouTube ids, VoxCeleb1-like in count (at fraction 1.0 the whole tree holds about
  22,500 videos, 153,500 clips and 630,000 frames);
- ``protocol/``: the protocol the tree answers to, in the shipped layout: the metadata, the identity split of the
  chosen identities only, and each list cut to the trials whose probe (a veriflist's voice, a matching list's probe)
  is a chosen identity: at fraction 1.0 the shipped lists whole;
- ``tree.json``: what was built (counts, seconds).

``fraction`` picks that share of each split's identities (train, val, test; at least two of each), at random under
``seed``; trial and file counts then scale with it.
"""

from __future__ import annotations

import json
import os
import shutil
import string
import time
import zlib
from collections import defaultdict
from pathlib import Path

import numpy as np
import soundfile as sf

from voxface.protocol.layout import AUDIO_DIR, FACE_VERSION_DIR, FACES_DIR
from voxface.protocol.lists import (
    SPLIT_TEST,
    SPLIT_TRAIN,
    SPLIT_VAL,
    VERIFICATION_HEADER,
    Protocol,
    load_protocol,
)

# VoxCeleb1 as released (Nagrani et al. 2017): videos and clips; frames at the lists' 28 per video.
VOXCELEB1_VIDEOS, VOXCELEB1_CLIPS, VOXCELEB1_FRAMES = 22_496, 153_516, 630_000
CLIP_MIN_SECONDS, CLIP_MEAN_SECONDS, CLIP_POOL_MAX_SECONDS = 4.0, 8.2, 30.0
FACE_PIXELS, FACE_QUALITY = 224, 90
YTID_CHARS = string.ascii_letters + string.digits + "-_"


def render_pool(folder: Path, voices: int = 40, faces: int = 40, seed: int = 0) -> tuple[list[Path], list[Path]]:
    """``voices`` WAVs and ``faces`` JPEGs rendered by VoxSynth into ``folder`` (reused when there). Clip lengths
    follow VoxCeleb1's: 4 s at least, exponential above it, 8.2 s on average (quantiles, capped at 30 s)."""
    from voxface.synth.face import Scene, render_face
    from voxface.synth.model import FACE_KNOBS, VOICE_KNOBS
    from voxface.synth.voice import SAMPLE_RATE, Channel, VoiceTraits, render_voice

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    tail = CLIP_MEAN_SECONDS - CLIP_MIN_SECONDS
    wavs, jpgs = [], []
    for i in range(voices):
        seconds = min(CLIP_POOL_MAX_SECONDS, CLIP_MIN_SECONDS - tail * np.log(1 - (i + 0.5) / voices))
        path = folder / f"voice_{i:03d}.wav"
        if not path.is_file():
            traits = VoiceTraits.from_knobs(rng.standard_normal(len(VOICE_KNOBS)), float(rng.standard_normal()))
            wave = render_voice(traits, Channel.draw(rng), float(seconds), rng)
            sf.write(path, wave, SAMPLE_RATE, subtype="PCM_16")
        wavs.append(path)
    for i in range(faces):
        path = folder / f"face_{i:03d}.jpg"
        if not path.is_file():
            image = render_face(rng.standard_normal(len(FACE_KNOBS)), Scene.draw(rng), rng, size=FACE_PIXELS)
            image.save(path, quality=FACE_QUALITY)
        jpgs.append(path)
    return wavs, jpgs


def _choose(protocol: Protocol, fraction: float, rng: np.random.Generator) -> dict[int, list[str]]:
    chosen = {}
    for split in (SPLIT_TRAIN, SPLIT_VAL, SPLIT_TEST):
        names = sorted(ident.name for ident in protocol.identities_in_split(split))
        count = min(len(names), max(2, round(fraction * len(names))))
        chosen[split] = sorted(names[i] for i in rng.permutation(len(names))[:count])
    return chosen


def _listed_totals(protocol: Protocol) -> tuple[int, int, int]:
    """Distinct videos, clips and frames all the shipped lists name (what the generated media top up)."""
    voices, faces = set(), set()
    for trials in protocol.all_verification():
        voices.update(trials.voice_files)
        faces.update(trials.face_files)
    for matching in protocol.all_matching():
        probe, candidates = (voices, faces) if matching.direction == "v2f" else (faces, voices)
        probe.update(matching.probes)
        candidates.update(matching.positives + matching.negatives)
    return len(_videos(protocol, voices, faces)), len(voices), len(faces)


def _videos(protocol: Protocol, voices: set[str], faces: set[str]) -> set[tuple[str, str]]:
    """``(name, ytid)`` of every video the voice and face files (relative to their roots) come from."""
    name_of = {ident.vox_id: ident.name for ident in protocol.identities.values()}
    return ({(name_of[v.split("/")[0]], v.split("/")[1]) for v in voices}
            | {(f.split("/")[0], f.split("/")[2]) for f in faces})


def _write_protocol(protocol: Protocol, folder: Path, chosen: dict[int, list[str]]) -> tuple[set[str], set[str], int]:
    """The cut protocol (module docstring) into ``folder``; (voice files, face files it names, trials kept)."""
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "veriflist").mkdir(parents=True)
    (folder / "matching").mkdir()
    shutil.copyfile(protocol.file("vox1_meta.csv"), folder / Path(protocol.file("vox1_meta.csv")).name)
    if Path(protocol.file("vox1_meta.csv")).suffix == ".xz":
        import lzma

        (folder / "vox1_meta.csv").write_bytes(lzma.decompress((folder / "vox1_meta.csv.xz").read_bytes()))
        (folder / "vox1_meta.csv.xz").unlink()
    (folder / "identity_splits.txt").write_text(
        "".join(f"{name} {split}\n" for split, names in chosen.items() for name in names))
    keep = {name for names in chosen.values() for name in names}
    keep_ids = {protocol.identities[name].vox_id for name in keep}
    voices, faces, kept = set(), set(), 0
    for trials in protocol.all_verification():
        rows = [i for i, v in enumerate(trials.voice_files) if v.split("/")[0] in keep_ids]
        kept += len(rows)
        lines = [",".join(VERIFICATION_HEADER)]
        for i in rows:
            lines.append(f"{trials.trial_ids[i]},{trials.voice_speakers[i]},{trials.face_speakers[i]},"
                         f"{trials.labels[i]},{trials.voice_paths[i]},{trials.face_paths[i]}")
            voices.add(trials.voice_files[i])
            faces.add(trials.face_files[i])
        (folder / "veriflist" / f"veriflist_test_{trials.name}.txt").write_text("\n".join(lines) + "\n")
    for matching in protocol.all_matching():
        voice_probe = matching.direction == "v2f"
        rows = [i for i, p in enumerate(matching.probes)
                if (p.split("/")[0] in keep_ids if voice_probe else p.split("/")[0] in keep)]
        kept += len(rows)
        for i in rows:
            (voices if voice_probe else faces).add(matching.probes[i])
            (faces if voice_probe else voices).update((matching.positives[i], matching.negatives[i]))
        (folder / "matching" / f"matching_{matching.name}.csv").write_text(
            "".join(f"{matching.probes[i]} {matching.positives[i]} {matching.negatives[i]}\n" for i in rows))
    return voices, faces, kept


def _ytid(rng: np.random.Generator, taken: set[str]) -> str:
    while True:
        ytid = "".join(YTID_CHARS[i] for i in rng.integers(len(YTID_CHARS), size=11))
        if ytid not in taken:
            taken.add(ytid)
            return ytid


def build_rehearsal_tree(fraction: float, out: str | Path, seed: int = 0, pool_voices: int = 40,
                         pool_faces: int = 40, lists: str | Path = "voxceleb1") -> dict:
    """Build the rehearsal tree of ``fraction`` (0 < fraction <= 1) of VoxCeleb1 into ``out`` (module docstring).

    Returns ``tree.json``'s content: ``root`` (the data root: ``wav/`` and ``unzippedFaces/``), ``lists`` (the
    protocol folder to pass as ``--lists``), ``identities`` per split, ``videos``, ``voices``, ``faces`` (files),
    ``listed_voices``/``listed_faces`` (those the kept trials name), ``trials`` (kept, over all 18 lists) and
    ``seconds``. The tree's previous ``data/`` and ``protocol/`` are replaced; the pool is reused. Raises
    ``ValueError`` for a fraction outside (0, 1]. Hard links need ``out`` on one file system (up to 65,000 links
    per pool file on ext4: at fraction 1.0 about 16,000 with 40 faces)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    start = time.perf_counter()
    out = Path(out)
    protocol = load_protocol(lists)
    rng = np.random.default_rng(seed)
    wavs, jpgs = render_pool(out / "pool", pool_voices, pool_faces, seed)
    chosen = _choose(protocol, fraction, rng)
    voices, faces, trials = _write_protocol(protocol, out / "protocol", chosen)
    listed_voices, listed_faces = len(voices), len(faces)
    # Generated videos for the training-side identities, so that the whole tree at fraction 1.0 holds VoxCeleb1's
    # counts: what the lists name, topped up evenly over the train and val identities.
    listed_videos, listed_clips, listed_frames = _listed_totals(protocol)
    trainable = len(protocol.identities_in_split(SPLIT_TRAIN)) + len(protocol.identities_in_split(SPLIT_VAL))
    extra_videos = max(0, VOXCELEB1_VIDEOS - listed_videos)
    videos_each = extra_videos / trainable
    clips_each = max(1.0, (VOXCELEB1_CLIPS - listed_clips) / max(1, extra_videos))
    frames_each = max(1.0, (VOXCELEB1_FRAMES - listed_frames) / max(1, extra_videos))
    taken: dict[str, set[str]] = defaultdict(set)
    for v in voices:
        taken[v.split("/")[0]].add(v.split("/")[1])
    for f in faces:
        taken[f.split("/")[0]].add(f.split("/")[2])
    generated = 0
    for name in chosen[SPLIT_TRAIN] + chosen[SPLIT_VAL]:
        vox_id = protocol.identities[name].vox_id
        used = taken[vox_id] | taken[name]
        # VoxCeleb1 has at least 4 videos per identity; the rest Poisson around the mean
        for _ in range(4 + rng.poisson(max(0.0, videos_each - 4))):
            ytid = _ytid(rng, used)
            generated += 1
            voices.update(f"{vox_id}/{ytid}/{c:05d}.wav" for c in range(1, int(rng.geometric(1 / clips_each)) + 1))
            faces.update(f"{name}/{FACE_VERSION_DIR}/{ytid}/{25 * f:07d}.jpg"
                         for f in range(1, int(rng.geometric(1 / frames_each)) + 1))
    data = out / "data"
    if data.exists():
        shutil.rmtree(data)
    for folder, files, pool in ((data / AUDIO_DIR, voices, wavs), (data / FACES_DIR, faces, jpgs)):
        made: set[Path] = set()
        for relative in sorted(files):
            target = folder / relative
            if target.parent not in made:
                target.parent.mkdir(parents=True, exist_ok=True)
                made.add(target.parent)
            os.link(pool[zlib.crc32(relative.encode()) % len(pool)], target)
    videos = _videos(protocol, voices, faces)
    summary = {"fraction": fraction, "seed": seed, "root": str(data), "lists": str(out / "protocol"),
               "identities": {"train": len(chosen[SPLIT_TRAIN]), "val": len(chosen[SPLIT_VAL]),
                              "test": len(chosen[SPLIT_TEST])},
               "videos": len(videos), "generated_videos": generated, "voices": len(voices), "faces": len(faces),
               "listed_voices": listed_voices, "listed_faces": listed_faces, "trials": trials,
               "pool": {"voices": len(wavs), "faces": len(jpgs)}, "seconds": round(time.perf_counter() - start, 1)}
    (out / "tree.json").write_text(json.dumps(summary, indent=1))
    return summary
