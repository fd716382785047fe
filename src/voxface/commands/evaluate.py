"""``voxface evaluate``: a trained checkpoint scored on every trial list; reports and plots."""

from __future__ import annotations

import argparse
from pathlib import Path

from voxface.commands.common import add_demo_arg, add_lists_arg, lists_for, require, say_from_demo
from voxface.demo_record import read_demo
from voxface.errors import ConfigError


def add_parser(commands: argparse._SubParsersAction) -> None:
    ev = commands.add_parser("evaluate", help="score every trial list with a trained checkpoint; write reports")
    ev.add_argument("--checkpoint", type=Path, required=True, help="a 'voxface train' checkpoint (.ckpt)")
    ev.add_argument("--data", type=Path, default=None, help="data set root (wav/, unzippedFaces/)")
    add_lists_arg(ev, "--data")
    add_demo_arg(ev, "--data and --lists")
    ev.add_argument("--out", type=Path, required=True, help="folder for reports and the embedding cache")
    ev.add_argument("--skip-missing", action="store_true", help="score what exists; report the trials lost")
    ev.add_argument("--crop", type=float, default=None, help="centre-crop voices to this many seconds")
    ev.add_argument("--batch-size", type=int, default=32,
                    help="voices or faces embedded at once (default: %(default)s)")
    ev.add_argument("--workers", type=int, default=None,
                    help="loader processes (default: 2 with a GPU, 0 on a CPU, where they slow the encoder down)")
    ev.add_argument("--ci", choices=["delong", "bootstrap", "none"], default="delong",
                    help="95%% interval of each AUC: DeLong's analytic one, a percentile bootstrap, or none "
                         "(default: %(default)s)")
    ev.add_argument("--bootstrap", type=int, default=1000, help="resamples with --ci bootstrap (default: %(default)s)")
    ev.add_argument("--name", default=None,
                    help="the run's name in the reports and plots (default: the run folder of --checkpoint)")
    ev.add_argument("--no-decomposition", action="store_true",
                    help="skip the references and demographic probes (they embed up to 8 voices and faces of each "
                         "training and validation identity, cached; with --backend its embeddings are reused)")
    ev.add_argument("--media", action="store_true",
                    help="a run trained on feature stores: re-embed the media with its encoders instead of reading "
                         "the stores")
    ev.add_argument("--backend", type=Path, default=None,
                    help="a 'voxface backend fit' folder: also score by its calibrated log-likelihood ratios")
    ev.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    data, lists = data_and_lists(args)
    require(args.checkpoint, "--checkpoint")
    require(data, "--data", kind="folder")
    require(args.backend, "--backend", kind="folder")
    from voxface.evaluation.checkpoint import run_name
    from voxface.evaluation.evaluate import evaluate
    from voxface.evaluation.report import write_reports
    from voxface.synth.build import oracle_beside

    name = args.name or run_name(args.checkpoint)
    result = evaluate(args.checkpoint, data, lists, out=args.out, skip_missing=args.skip_missing,
                      crop_seconds=args.crop, batch_size=args.batch_size, workers=args.workers,
                      bootstrap=args.bootstrap, backend=args.backend, ci=args.ci,
                      decomposition=not args.no_decomposition, name=name,
                      from_features=False if args.media else None)
    oracle = oracle_beside(lists) if lists != "voxceleb1" else None
    paths = write_reports(result, args.out, name=name,
                          oracle=oracle, literature=lists == "voxceleb1")  # published rows: VoxCeleb1's lists only
    print((Path(args.out) / "report.md").read_text())
    print("reports: " + ", ".join(map(str, paths)))
    return 0


def data_and_lists(args: argparse.Namespace) -> tuple[Path, str]:
    """The data root and lists to evaluate on: ``--data`` and ``--lists`` where given, else the demo's (``--demo``);
    without either, the data root's own ``protocol/`` or the shipped lists (``lists_for``)."""
    if args.demo is not None:
        record = read_demo(args.demo)
        if args.data is None:  # the demo's data with its lists; --data given here brings its own
            data, lists = Path(record.data), args.lists if args.lists is not None else record.lists
            say_from_demo(args.demo, [f"--data {data}", f"--lists {lists}"])
            return data, lists
    if args.data is None:
        raise ConfigError("voxface evaluate needs --data ROOT (the data set root), or --demo RUN (a demo folder)")
    return args.data, lists_for(args.data, args.lists)
