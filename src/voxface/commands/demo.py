"""``voxface demo``: the main job end to end (data, priors, method and ablations, evaluation, reports)."""

from __future__ import annotations

import argparse
from pathlib import Path

from voxface.commands.common import lists_for
from voxface.errors import VoxfaceError


def add_parser(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser(
        "demo", help="the main job end to end: data, priors, method + ablations, peers benchmark, evaluation, "
                     "reports (resumes)",
        description="On VoxSynth (default) or your own VoxCeleb1-layout data (--data ROOT --face-weights W): "
                    "train the paper's full method, its contrastive-only and OT-only ablations and the full method "
                    "with the voice encoder from scratch; fit the full run's backend; evaluate every run on every "
                    "list; on VoxSynth, also train and score every registered method on the same features (the "
                    "peers benchmark); write the Table 2 / 3 / 4 reports and plots into one run folder. Run again "
                    "to continue.")
    demo.add_argument("--out", type=Path, default=Path("runs/demo"), help="run folder (default: %(default)s)")
    demo.add_argument("--size", default="default", help="VoxSynth and model sizes: default or tiny (a quick check)")
    demo.add_argument("--epochs", type=int, default=None, help="training epochs of every run (default: the size's)")
    demo.add_argument("--workers", type=int, default=None, help="processes for generation (default: all cores)")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.add_argument("--seed", type=int, default=None, help="the training runs' seed (default: the config's, 0)")
    demo.add_argument("--strict", action="store_true", help="exit with status 1 when a bar is not met")
    demo.add_argument("--train-priors", action="store_true", help="pretrain the face teacher and the voice prior "
                      "here, on a small draw of their own, instead of loading the shipped release priors")
    demo.add_argument("--data", type=Path, default=None, help="your VoxCeleb1-layout root instead of VoxSynth")
    demo.add_argument("--lists", default=None, help="with --data: 'voxceleb1' or a protocol folder (default: "
                      "ROOT/protocol where --data ROOT has that folder, else voxceleb1)")
    demo.add_argument("--face-weights", type=Path, default=None, help="with --data: the face teacher backbone.pth")
    demo.add_argument("--config", default=None,
                      help="with --data: a training YAML or shipped name (audio encoder, sizes); the demo sets data, "
                           "teacher, out")
    demo.add_argument("overrides", nargs="*", metavar="key=value", help="with --data: training config overrides")
    demo.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    user = None
    if args.data is not None:
        if args.face_weights is None:
            raise VoxfaceError("--data needs --face-weights: the face teacher (an insightface backbone.pth)")
    elif args.face_weights or args.config or args.overrides:
        raise VoxfaceError("--face-weights, --config and key=value overrides go with --data (your own data set)")
    if args.train_priors and args.data is not None:
        raise VoxfaceError("--train-priors trains VoxSynth priors; with --data the face teacher is --face-weights")
    from voxface.demo import UserData, run_demo

    if args.data is not None:
        user = UserData(root=args.data, face_weights=args.face_weights, lists=lists_for(args.data, args.lists),
                        config=args.config, overrides=args.overrides)
    result = run_demo(args.out, size=args.size, user=user, epochs=args.epochs, workers=args.workers, seed=args.seed,
                      progress=not args.quiet, train_priors=args.train_priors)
    return 0 if all(bar["met"] for bar in result["bars"]) or not args.strict else 1
