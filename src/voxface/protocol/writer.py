"""Write protocol files in exactly the VoxCeleb1 formats (the inverse of ``lists.py``).

Used by VoxSynth and by the test trees, so that synthetic data goes through the same parser.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from voxface.protocol.lists import VERIFICATION_HEADER, Identity


def write_meta(folder: Path, identities: Sequence[Identity]) -> None:
    """``vox1_meta.csv``: tab-separated; an ``Age`` column is added when every identity has an age."""
    with_age = all(i.age is not None for i in identities)
    header = ["VoxCeleb1 ID", "VGGFace1 ID", "Gender", "Nationality", "Set"] + (["Age"] if with_age else [])
    rows = ["\t".join(header)]
    for i in identities:
        rows.append("\t".join([i.vox_id, i.name, i.gender, i.nationality, i.set] + ([str(i.age)] if with_age else [])))
    _write(folder / "vox1_meta.csv", rows)


def write_splits(folder: Path, splits: dict[str, int]) -> None:
    """``identity_splits.txt``: ``<Name> <split>`` per line (with the trailing space of the original)."""
    _write(folder / "identity_splits.txt", [f"{name} {split} " for name, split in splits.items()])


def old_voice_path(name: str, ytid: str, clip_file: str) -> str:
    """The veriflists' voice naming: ``<Name>/<ytid>_<7 digits>.wav`` from a released clip name."""
    return f"{name}/{ytid}_{int(Path(clip_file).stem):07d}.wav"


def write_verification(folder: Path, group: str, test_set: str,
                       trials: Iterable[tuple[int, int, str, str]]) -> None:
    """A veriflist from ``(voice speaker number, face speaker number, voice path, face path)`` rows,
    paths in the list's own naming (see ``old_voice_path``; faces ``<Name>/<ytid>/<frame>.jpg``)."""
    rows = [",".join(VERIFICATION_HEADER)]
    for n, (voice_id, face_id, voice, face) in enumerate(trials, start=1):
        rows.append(f"{n},{voice_id},{face_id},{int(voice_id == face_id)},{voice},{face}")
    _write(folder / "veriflist" / f"veriflist_test_{group}_{test_set}.txt", rows)


def write_matching(folder: Path, direction: str, group: str, trials: Iterable[tuple[str, str, str]]) -> None:
    """A 1:2 matching list: released paths ``probe correct wrong``, space-separated."""
    _write(folder / "matching" / f"matching_{direction}_{group}.csv", [" ".join(t) for t in trials])


def _write(path: Path, rows: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
