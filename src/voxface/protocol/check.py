"""``voxface protocol check ROOT``: are the files the trial lists need present and readable?"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from voxface.errors import MediaError, ProtocolError
from voxface.formats import AUDIO_SUFFIXES
from voxface.media.audio import read_voice
from voxface.media.faces import read_face
from voxface.protocol.layout import DataRoots
from voxface.protocol.lists import Protocol

MISSING, UNREADABLE, OK = "missing", "unreadable", "ok"


def file_status(path: Path) -> str:
    """``ok``, ``missing`` or ``unreadable``: what training and evaluation will make of the file, read by the same
    readers (a clip whole, as evaluation reads it by default)."""
    if not path.is_file():
        return MISSING
    try:
        if path.suffix.lower() in AUDIO_SUFFIXES:
            read_voice(path, None)
        else:
            read_face(path)
    except MediaError:
        return UNREADABLE
    return OK


def presence_status(path: Path) -> str:
    """``ok`` or ``missing``: whether the file is there, without reading it (``protocol check --quick``)."""
    return OK if path.is_file() else MISSING


@dataclass
class ListCheck:
    name: str
    files: int
    missing: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    trials: int = 0
    trials_affected: int = 0


def check_files(protocol: Protocol, roots: DataRoots, workers: int = 8, quick: bool = False) -> list[ListCheck]:
    """Check every file each verification and matching list names, each distinct file once: decoded by the readers
    training and evaluation use, or with ``quick`` only looked for (``unreadable`` then stays empty). Raises
    ``ProtocolError`` when a root folder does not exist."""
    for label, folder in (("audio", roots.audio), ("face", roots.faces)):
        if not folder.is_dir():
            raise ProtocolError(f"{label} root {folder} does not exist: is the data set unpacked there?")
    lists: list[tuple[str, list[Path], list[list[Path]]]] = []
    for trials in protocol.all_verification():
        rows = [[roots.voice(v), roots.face(f)] for v, f in zip(trials.voice_files, trials.face_files, strict=True)]
        lists.append((trials.name, sorted({p for row in rows for p in row}), rows))
    for matching in protocol.all_matching():
        voice, face = (roots.voice, roots.face) if matching.direction == "v2f" else (roots.face, roots.voice)
        rows = [[voice(p), face(a), face(b)]
                for p, a, b in zip(matching.probes, matching.positives, matching.negatives, strict=True)]
        lists.append((f"matching_{matching.name}", sorted({p for row in rows for p in row}), rows))
    distinct = sorted({p for _, files, _ in lists for p in files})
    with ThreadPoolExecutor(max_workers=workers) as pool:
        status = dict(zip(distinct, pool.map(presence_status if quick else file_status, distinct), strict=True))
    results = []
    for name, files, rows in lists:
        check = ListCheck(name, len(files), trials=len(rows))
        check.missing = [str(p) for p in files if status[p] == MISSING]
        check.unreadable = [str(p) for p in files if status[p] == UNREADABLE]
        check.trials_affected = sum(any(status[p] != OK for p in row) for row in rows)
        results.append(check)
    return results


def format_check(results: list[ListCheck], examples: int = 3, quick: bool = False) -> str:
    """The table of ``check_files``; ``quick``: its files were only looked for, not read."""
    lines = [f"{'list':<24}{'files':>8}{'missing':>9}{'unreadable':>11}{'trials':>8}{'affected':>9}"]
    for r in results:
        lines.append(f"{r.name:<24}{r.files:>8}{len(r.missing):>9}{len(r.unreadable):>11}"
                     f"{r.trials:>8}{r.trials_affected:>9}")
    bad_missing = sorted({p for r in results for p in r.missing})
    bad_unreadable = sorted({p for r in results for p in r.unreadable})
    for label, paths in (("missing", bad_missing), ("unreadable", bad_unreadable)):
        if paths:
            lines.append(f"{len(paths)} distinct files {label}, e.g. " + ", ".join(paths[:examples]))
    if not bad_missing and not bad_unreadable:
        lines.append("all files the lists need are present (not read: without --quick each is decoded)" if quick
                     else "all files the lists need are present and readable")
    return "\n".join(lines)
