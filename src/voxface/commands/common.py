"""Flags and checks several commands share; nothing here imports torch."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from voxface.errors import ConfigError

SHIPPED_LISTS = "voxceleb1"  # the shipped VoxCeleb1 lists (protocol.lists.BUILTIN)


def add_lists_arg(parser: argparse.ArgumentParser, data: str | None) -> None:
    """``--lists``. ``data``: the data root's flag ("--data", or "ROOT" for a positional one): where the root holds a
    ``protocol/`` folder, that folder is the default (``lists_for``); None: no data root, the shipped lists."""
    if data is None:
        parser.add_argument("--lists", default=SHIPPED_LISTS, help="protocol files: 'voxceleb1' (shipped) or a folder "
                            "in the same layout (default: %(default)s)")
        return
    parser.add_argument("--lists", default=None,
                        help=f"protocol files: 'voxceleb1' (shipped) or a folder in the same layout (default: "
                             f"{data}'s own protocol/ folder where it has one, else voxceleb1)")


def add_root_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", type=Path, help="data set root holding the audio and face folders")
    parser.add_argument("--audio-dir", default="wav", help="audio folder under ROOT (default: %(default)s)")
    parser.add_argument("--faces-dir", default="unzippedFaces", help="face folder under ROOT (default: %(default)s)")


def lists_for(root: str | Path | None, lists: str | None) -> str:
    """The lists a command reads: ``lists`` when given; else the data root's own ``protocol/`` folder where it has
    one (said on stderr in one line); else the shipped VoxCeleb1 lists."""
    if lists is not None:
        return lists
    own = Path(root) / "protocol" if root is not None else None
    if own is not None and own.is_dir():
        print(f"lists: {own}, the data root's own (--lists voxceleb1 for the shipped VoxCeleb1 lists)",
              file=sys.stderr)
        return str(own)
    return SHIPPED_LISTS


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


def add_demo_arg(parser: argparse.ArgumentParser, takes: str) -> None:
    """``--demo RUN``: a ``voxface demo`` folder whose record (``RUN/demo.json``) gives ``takes``."""
    parser.add_argument("--demo", type=Path, default=None, metavar="RUN",
                        help=f"a 'voxface demo' folder: take {takes} from it (its demo.json); flags and KEY=VALUE "
                             "given here win")


def say_from_demo(demo: Path, settings: list[str]) -> None:
    """One line on stderr: what a command took from a demo folder."""
    print(f"from the demo {demo}: {' '.join(settings)}", file=sys.stderr)


def count(number: int, thing: str) -> str:
    """'1 line', '3 lines'."""
    return f"{number} {thing}{'' if number == 1 else 's'}"
