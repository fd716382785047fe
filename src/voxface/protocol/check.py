"""``voxface protocol check ROOT``: are the files the trial lists need present and readable?"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from voxface.errors import MediaError, ProtocolError
from voxface.formats import AUDIO_SUFFIXES
from voxface.media.audio import read_voice
from voxface.media.faces import read_face
from voxface.protocol.layout import DataRoots
from voxface.protocol.lists import Protocol

MISSING, UNREADABLE, OK = "missing", "unreadable", "ok"


def file_status(path: str | Path) -> str:
    """``ok``, ``missing`` or ``unreadable``: what training and evaluation will make of the file, read by the same
    readers (a clip whole, as evaluation reads it by default)."""
    if not os.path.isfile(path):
        return MISSING
    return UNREADABLE if unreadable_reason(path) else OK


def presence_status(path: str | Path) -> str:
    """``ok`` or ``missing``: whether the file is there, without reading it (``protocol check --quick``)."""
    return OK if os.path.isfile(path) else MISSING


@dataclass
class ListCheck:
    name: str
    files: int
    missing: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    trials: int = 0
    trials_affected: int = 0


def _statuses(paths: list[str], status, workers: int, chunk: int = 512) -> dict[str, str]:
    """``{path: status(path)}``, chunks of ``chunk`` paths shared among ``workers`` threads (a task per file cost
    more than a presence check)."""
    def run(part: list[str]) -> list[str]:
        return [status(p) for p in part]

    chunks = [paths[i:i + chunk] for i in range(0, len(paths), chunk)]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return dict(zip(paths, (s for part in pool.map(run, chunks) for s in part), strict=True))


def check_files(protocol: Protocol, roots: DataRoots, workers: int = 8, quick: bool = False) -> list[ListCheck]:
    """Check every file each verification and matching list names, each distinct file once: decoded by the readers
    training and evaluation use, or with ``quick`` only looked for (``unreadable`` then stays empty). Raises
    ``ProtocolError`` when a root folder does not exist.

    Paths stay strings until a file is read, and a trial's files are looked up column by column: on VoxCeleb1's
    300,000 trials and 230,000 files, building and sorting path objects per trial cost minutes."""
    if roots.audio.parent == roots.faces.parent and not roots.audio.parent.is_dir():  # ROOT itself is missing
        raise ProtocolError(f"data root {roots.audio.parent} does not exist: is the data set unpacked there?")
    for label, folder in (("audio", roots.audio), ("face", roots.faces)):
        if not folder.is_dir():
            raise ProtocolError(f"{label} root {folder} does not exist: is the data set unpacked there?")
    voice, face = f"{roots.audio}{os.sep}", f"{roots.faces}{os.sep}"
    lists: list[tuple[str, list[tuple[str, list[str]]]]] = []  # (name, columns of (root prefix, relative paths))
    for trials in protocol.all_verification():
        lists.append((trials.name, [(voice, trials.voice_files), (face, trials.face_files)]))
    for matching in protocol.all_matching():
        probe, candidate = (voice, face) if matching.direction == "v2f" else (face, voice)
        lists.append((f"matching_{matching.name}", [(probe, matching.probes), (candidate, matching.positives),
                                                    (candidate, matching.negatives)]))
    files = {name: {prefix + rel for prefix, column in columns for rel in set(column)} for name, columns in lists}
    distinct = sorted(set().union(*files.values()))
    status = _statuses(distinct, presence_status if quick else file_status, workers)
    bad = {path for path, s in status.items() if s != OK}
    results = []
    for name, columns in lists:
        check = ListCheck(name, len(files[name]), trials=len(columns[0][1]))
        mine = sorted(files[name] & bad)
        check.missing = [p for p in mine if status[p] == MISSING]
        check.unreadable = [p for p in mine if status[p] == UNREADABLE]
        if mine:
            affected = np.zeros(check.trials, dtype=bool)
            for prefix, column in columns:
                bad_here = {rel for rel in set(column) if prefix + rel in bad}
                affected |= np.fromiter((rel in bad_here for rel in column), dtype=bool, count=len(column))
            check.trials_affected = int(affected.sum())
        results.append(check)
    return results


def unreadable_reason(path: str | Path) -> str:
    """Why the readers refuse ``path`` (their one-line message), or "" when they read it (``file_status``'s read)."""
    try:
        if Path(path).suffix.lower() in AUDIO_SUFFIXES:
            read_voice(path, None)
        else:
            read_face(path)
    except MediaError as err:
        return str(err)
    return ""


def bad_files(results: list[ListCheck]) -> tuple[list[str], list[str]]:
    """The distinct missing and the distinct unreadable files of ``results``, each sorted."""
    return (sorted({p for r in results for p in r.missing}), sorted({p for r in results for p in r.unreadable}))


def write_report(results: list[ListCheck], path: str | Path) -> int:
    """Every distinct missing and unreadable file of ``results`` into the text file ``path``, one per line, sorted:
    ``missing<TAB>file`` or ``unreadable<TAB>file<TAB>why`` (the reader's reason, read again). Returns how many.
    ``ProtocolError`` when ``path`` cannot be written."""
    missing, unreadable = bad_files(results)
    rows = [f"{MISSING}\t{p}" for p in missing] + [f"{UNREADABLE}\t{p}\t{unreadable_reason(p)}" for p in unreadable]
    try:
        Path(path).write_text("".join(row + "\n" for row in rows), encoding="utf-8")
    except OSError as err:
        raise ProtocolError(f"cannot write the report {path}: {err.strerror or err}") from None
    return len(rows)


def format_check(results: list[ListCheck], examples: int = 3, quick: bool = False) -> str:
    """The table of ``check_files``; ``quick``: its files were only looked for, not read."""
    lines = [f"{'list':<24}{'files':>8}{'missing':>9}{'unreadable':>11}{'trials':>8}{'affected':>9}"]
    for r in results:
        lines.append(f"{r.name:<24}{r.files:>8}{len(r.missing):>9}{len(r.unreadable):>11}"
                     f"{r.trials:>8}{r.trials_affected:>9}")
    bad_missing, bad_unreadable = bad_files(results)
    for label, paths in (("missing", bad_missing), ("unreadable", bad_unreadable)):
        if paths:
            lines.append(f"{len(paths)} distinct files {label}, e.g. " + ", ".join(paths[:examples]))
    if not bad_missing and not bad_unreadable:
        lines.append("all files the lists need are present (not read: without --quick each is decoded)" if quick
                     else "all files the lists need are present and readable")
    return "\n".join(lines)
