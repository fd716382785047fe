"""``voxface embed``: voice or face embeddings of a list of files, to ``.npy`` with an index ``.csv``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from voxface.commands.common import count
from voxface.errors import MediaError, VoxfaceError


def add_parser(commands: argparse._SubParsersAction) -> None:
    embed = commands.add_parser("embed", help="export voice or face embeddings to .npy with an index .csv")
    embed.add_argument("--checkpoint", type=Path, required=True, help="a 'voxface train' checkpoint (.ckpt)")
    embed.add_argument("--kind", choices=["voice", "face"], required=True,
                       help="what --files lists: voice (audio) or face (image) files")
    embed.add_argument("--files", type=Path, required=True,
                       help="a .txt file with one audio or image path per line (relative paths are read against "
                            "the list file's folder)")
    embed.add_argument("--out", type=Path, required=True, help="output stem: OUT.npy and OUT.csv")
    embed.add_argument("--crop", type=float, default=None,
                       help="centre-crop each voice to this many seconds (default: whole clips)")
    embed.add_argument("--skip-unreadable", action="store_true",
                       help="leave out the lines whose file cannot be read (each named on stderr) and write the "
                            "rest; without it, such a line stops the export, named with its line number")
    embed.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from voxface.protocol.text import read_lines

    if not args.files.is_file():
        raise VoxfaceError(f"--files {args.files} does not exist (a text file with one path per line)")
    # relative paths are read against the list file's folder, as lists of files usually mean them
    lines = [(number, args.files.parent / line.strip()) for number, line in read_lines(args.files)]
    if not lines:
        raise MediaError(f"--files {args.files} lists no {args.kind} files (one path per line)")
    import numpy as np

    from voxface.evaluation.api import VoiceFaceScorer, write_embeddings

    vectors, errors = VoiceFaceScorer(args.checkpoint, crop_seconds=args.crop).embed_readable(
        [path for _, path in lines], args.kind)
    bad = [(number, errors[path]) for number, path in lines if path in errors]
    if bad and not args.skip_unreadable:
        more = f" (and {count(len(bad) - 1, 'more unreadable line')})" if len(bad) > 1 else ""
        raise MediaError(f"{args.files} line {bad[0][0]}: {bad[0][1]}{more}; correct or remove it, or pass "
                         "--skip-unreadable to embed the other lines")
    for number, error in bad:
        print(f"skipped {args.files} line {number}: {error}", file=sys.stderr)
    kept = [path for _, path in lines if path in vectors]
    if not kept:
        raise MediaError(f"{args.files}: no line names a readable file ({count(len(lines), 'line')} tried); "
                         "nothing to write")
    npy, index = write_embeddings(np.stack([vectors[path] for path in kept]), [str(path) for path in kept], args.out)
    print(f"{len(kept)} {args.kind} embeddings -> {npy} (index {index})"
          + (f"; {count(len(bad), 'unreadable line')} skipped (listed above)" if bad else ""))
    return 0
