"""``voxface pretrain``: a face or voice encoder pretrained on an identity folder."""

from __future__ import annotations

import argparse


def add_parser(commands: argparse._SubParsersAction) -> None:
    pretrain = commands.add_parser("pretrain", help="pretrain a face or voice encoder on an identity folder "
                                   "(identity classification, additive angular margin)")
    pretrain.add_argument("--config", required=True,
                          help="a YAML file or a shipped name: voxsynth/pretrain_face, voxsynth/pretrain_voice")
    pretrain.add_argument("--resume", action="store_true", help="continue the run in trainer.out from its last "
                          "checkpoint")
    pretrain.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                          help="e.g. data.root=runs/demo/voxsynth/teacher_voices trainer.epochs=8")
    pretrain.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from voxface.training.pretrain import format_pretrain, load_pretrain_config, pretrain

    config = load_pretrain_config(args.config, args.overrides)
    print(format_pretrain(pretrain(config, resume=args.resume)))
    return 0
