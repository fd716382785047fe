"""``voxface benchmark``: every method trained and scored on one pair of feature stores (Table 2)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(commands: argparse._SubParsersAction) -> None:
    bench = commands.add_parser(
        "benchmark", help="train and evaluate every method on one feature store under the official lists (Table 2)",
        description="Every registered method (or those of --methods), each with its shipped configuration "
                    "<set>/peers/<method>, trained on the same stored features and evaluated on every official "
                    "list; writes benchmark.md/.csv/.json. Run again to continue an interrupted benchmark.")
    bench.add_argument("--set", dest="config_set", default="voxsynth", choices=("voxsynth", "voxceleb1"),
                       help="which shipped configurations (default: %(default)s)")
    bench.add_argument("--out", type=Path, default=None,
                       help="benchmark folder: features/, runs/, the tables (default: runs/demo/benchmark for "
                            "voxsynth, the demo's; runs/voxceleb1/benchmark for voxceleb1)")
    bench.add_argument("--methods", type=lambda text: [m.strip() for m in text.split(",")], default=None,
                       help="method names, comma-separated, e.g. pins,dimnet (default: every registered one)")
    bench.add_argument("--seeds", type=int, default=1, help="seeds per method (default 1): N > 1 reports mean ± sd")
    bench.add_argument("--jobs", type=int, default=1,
                       help="runs at once, each in its own process (default 1; the heads keep about one core busy "
                            "each)")
    bench.add_argument("--quiet", action="store_true", help="no progress bars")
    bench.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                       help="applied to every method's configuration, e.g. data.root=... features.face=...; the "
                            "stores default to OUT/features/faces and OUT/features/voices")
    bench.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from voxface.benchmark import run_benchmark

    if args.out is None:
        args.out = Path("runs/demo/benchmark" if args.config_set == "voxsynth" else "runs/voxceleb1/benchmark")
    print(f"benchmark ({args.config_set}) -> {args.out}", flush=True)
    table = run_benchmark(args.out, args.config_set, args.methods, args.seeds, args.overrides,
                          progress=not args.quiet, jobs=args.jobs)
    print((Path(args.out) / "benchmark.md").read_text())
    print(f"{len(table['methods'])} methods in {table['seconds']['total']:.0f} s; tables: {args.out}/benchmark.md, "
          f".csv, .json")
    return 0
