"""``voxface benchmark``: every method trained and scored on one pair of feature stores (Table 2)."""

from __future__ import annotations

import argparse
from pathlib import Path

from voxface.commands.common import add_demo_arg, say_from_demo
from voxface.demo_record import read_demo


def add_parser(commands: argparse._SubParsersAction) -> None:
    bench = commands.add_parser(
        "benchmark", help="train and evaluate every method on one feature store under the official lists (Table 2)",
        description="Every registered method (or those of --methods), each with its shipped configuration "
                    "<set>/peers/<method>, trained on the same stored features and evaluated on every official "
                    "list; writes benchmark.md/.csv/.json. Run again to continue an interrupted benchmark.")
    bench.add_argument("--set", dest="config_set", default=None, choices=("voxsynth", "voxceleb1"),
                       help="which shipped configurations (default: voxsynth, or the demo's with --demo)")
    bench.add_argument("--out", type=Path, default=None,
                       help="benchmark folder: features/, runs/, the tables (default: RUN/benchmark with --demo RUN, "
                            "the demo's own, which it continues; else runs/demo/benchmark for voxsynth, "
                            "runs/voxceleb1/benchmark for voxceleb1)")
    bench.add_argument("--methods", type=lambda text: [m.strip() for m in text.split(",")], default=None,
                       help="method names, comma-separated, e.g. pins,dimnet (default: every registered one)")
    bench.add_argument("--seeds", type=int, default=1, help="seeds per method (default 1): N > 1 reports mean ± sd")
    bench.add_argument("--tune", type=int, default=0, metavar="N",
                       help="draw N configurations per method from the search space its configuration declares, keep "
                            "the one of best validation AUC, then train it with the seeds (default 0: each method's "
                            "shipped configuration)")
    bench.add_argument("--jobs", type=int, default=1,
                       help="runs at once, each in its own process (default 1; the heads keep about one core busy "
                            "each)")
    bench.add_argument("--media", action="store_true",
                       help="the end-to-end track: every method trains on the media (face teacher frozen, voice "
                            "encoder fine-tuned from its prior, one budget: <set>/peers/media.yaml), into OUT/media")
    bench.add_argument("--quiet", action="store_true", help="no progress bars")
    add_demo_arg(bench, "the data root, lists, face and voice weights, face store, face size, batch size and "
                 "epochs of its own benchmark")
    bench.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                       help="applied to every method's configuration, e.g. data.root=... features.face=...; the "
                            "stores default to OUT/features/faces and OUT/features/voices")
    bench.set_defaults(func=run)


def settings(args: argparse.Namespace) -> tuple[Path, str, list[str]]:
    """(folder, configuration set, overrides) of the benchmark the command line asks for: with ``--demo RUN``, the
    demo's own benchmark settings (``demo.json``) first, the command line's overrides after them; with ``--media``
    as well, the demo's teacher cache instead of its features track's stores."""
    overrides, config_set, out = list(args.overrides), args.config_set, args.out
    if args.demo is not None:
        record = read_demo(args.demo)
        recorded = record.benchmark
        if args.media:  # trained on the media: not the features track's stores, but the demo's teacher cache
            recorded = [item for item in recorded if not item.startswith("features.")] + [
                item for item in record.train if item.startswith("face.cache_dir=")]
        overrides = [*recorded, *overrides]
        config_set = config_set or record.benchmark_set
        out = out if out is not None else args.demo / "benchmark"
        say_from_demo(args.demo, recorded)
    config_set = config_set or "voxsynth"
    if out is None:
        out = Path("runs/demo/benchmark" if config_set == "voxsynth" else "runs/voxceleb1/benchmark")
    return out, config_set, overrides


def run(args: argparse.Namespace) -> int:
    out, config_set, overrides = settings(args)
    from voxface.benchmark import run_benchmark, track_folder

    folder = track_folder(out, args.media)
    print(f"benchmark ({config_set}{', end to end' if args.media else ''}) -> {folder}", flush=True)
    table = run_benchmark(out, config_set, args.methods, args.seeds, overrides, progress=not args.quiet,
                          jobs=args.jobs, tune=args.tune, media=args.media)
    print((folder / "benchmark.md").read_text())
    print(f"{len(table['methods'])} methods in {table['seconds']['total']:.0f} s; tables: {folder}/benchmark.md, "
          f".csv, .json")
    return 0
