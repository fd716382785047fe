"""``voxface report``: several evaluated runs side by side (Table 3 / 4 layout)."""

from __future__ import annotations

import argparse
from pathlib import Path

from voxface.errors import VoxfaceError


def add_parser(commands: argparse._SubParsersAction) -> None:
    report = commands.add_parser("report", help="put several evaluated runs side by side (Table 3 / 4 layout)")
    report.add_argument("runs", type=Path, nargs="+", help="folders written by 'voxface evaluate --out'")
    report.add_argument("--out", type=Path, required=True,
                        help="folder for the side-by-side table: comparison.md, .csv and .json")
    report.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from voxface.evaluation.report import compare_runs

    try:
        paths = compare_runs(args.runs, args.out)
    except FileNotFoundError as err:
        raise VoxfaceError(str(err)) from None
    print((Path(args.out) / "comparison.md").read_text())
    print("reports: " + ", ".join(map(str, paths)))
    return 0
