"""What the on-disk embedding caches share: a file's stamp and an all-or-nothing ``.npz`` write.

A cached embedding is reused only while its file's stamp (size and modification time) is unchanged,
and a cache is written to a temporary file and renamed, so an interrupted write never leaves a torn one.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def file_stamp(path: str | Path) -> str:
    """``"size:mtime_ns"``, or ``""`` for a file that cannot be stat-ed."""
    try:
        stat = os.stat(path)
    except OSError:
        return ""
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def file_size(path: str | Path) -> int:
    """Bytes in the file, or 0 for one that cannot be stat-ed (it fails later, with its reason)."""
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def save_npz_atomic(path: Path, **arrays: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.stem + ".tmp.npz")
    np.savez(temporary, **arrays)
    os.replace(temporary, path)
