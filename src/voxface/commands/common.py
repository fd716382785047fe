"""Flags and checks several commands share; nothing here imports torch."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from voxface.errors import ConfigError


def add_lists_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lists", default="voxceleb1",
                        help="protocol files: 'voxceleb1' (shipped) or a folder in the same layout "
                        "(default: %(default)s)")


def add_root_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", type=Path, help="data set root holding the audio and face folders")
    parser.add_argument("--audio-dir", default="wav", help="audio folder under ROOT (default: %(default)s)")
    parser.add_argument("--faces-dir", default="unzippedFaces", help="face folder under ROOT (default: %(default)s)")


def lists_hint(root: Path, lists: str) -> None:
    """A root with its own protocol/ folder scored against the shipped VoxCeleb1 lists is almost always a slip."""
    if lists == "voxceleb1" and (Path(root) / "protocol").is_dir():
        print(f"note: this root has its own protocol/ folder: pass --lists {Path(root) / 'protocol'} to use it "
              "(scoring it against the VoxCeleb1 lists now)", file=sys.stderr)


def require(path: Path | None, what: str, kind: str = "file") -> None:
    """``ConfigError`` in one line unless ``path`` (given as ``what``) is an existing file (``kind="file"``) or
    folder (``"folder"``); None passes (an option not given)."""
    if path is None:
        return
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{what} {path} does not exist")
    if kind == "file" and path.is_dir():
        raise ConfigError(f"{what} {path} is a folder, not a file")
    if kind == "folder" and not path.is_dir():
        raise ConfigError(f"{what} {path} is a file, not a folder")


def count(number: int, thing: str) -> str:
    """'1 line', '3 lines'."""
    return f"{number} {thing}{'' if number == 1 else 's'}"
