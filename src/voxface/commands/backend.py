"""``voxface backend fit``: the Gaussian (PLDA-style) backend of a trained run, calibrated on validation
identities."""

from __future__ import annotations

import argparse
from pathlib import Path

from voxface.commands.common import add_lists_arg, lists_for, require


def add_parser(commands: argparse._SubParsersAction) -> None:
    backend = commands.add_parser("backend", help="a Gaussian (PLDA-style) backend: likelihood ratios, probabilities")
    backend_commands = backend.add_subparsers(dest="backend_command", required=True, metavar="SUBCOMMAND",
                                              help="fit")
    fit = backend_commands.add_parser(
        "fit", help="fit it on the training identities' embeddings, calibrate it on the validation identities")
    fit.add_argument("--checkpoint", type=Path, required=True, help="a 'voxface train' checkpoint (.ckpt)")
    fit.add_argument("--data", type=Path, required=True, help="data set root (wav/, unzippedFaces/)")
    add_lists_arg(fit, "--data")
    fit.add_argument("--out", type=Path, required=True, help="backend folder, e.g. RUN/backend")
    fit.add_argument("--reduce", choices=["lda", "pca", "none"], default="lda",
                     help="per-modality reduction before the joint Gaussian (default: %(default)s)")
    fit.add_argument("--crop", type=float, default=None, help="centre-crop voices (as evaluate --crop will)")
    fit.add_argument("--media", action="store_true",
                     help="a run trained on feature stores: embed media instead of reading the stores")
    fit.add_argument("--batch-size", type=int, default=32,
                     help="voices or faces embedded at once (default: %(default)s)")
    fit.add_argument("--workers", type=int, default=None,
                     help="loader processes (default: 2 with a GPU, 0 on a CPU, where they slow the encoder down)")
    fit.set_defaults(func=run_fit)


def run_fit(args: argparse.Namespace) -> int:
    require(args.checkpoint, "--checkpoint")
    require(args.data, "--data", kind="folder")
    lists = lists_for(args.data, args.lists)
    from voxface.evaluation.backend import fit_backend, format_backend

    backend = fit_backend(args.checkpoint, args.data, lists, out=args.out, reduce=args.reduce,
                          crop_seconds=args.crop, batch_size=args.batch_size, workers=args.workers,
                          from_features=False if args.media else None)
    print(format_backend(backend.info))
    print(f"backend: {args.out} (use with: voxface evaluate ... --backend {args.out}; "
          f"voxface score ... --backend {args.out})")
    return 0
