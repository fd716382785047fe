"""``voxface pretrain`` (and ``pretrain-face``, its IResNet flags): a face or voice encoder pretrained on an
identity folder."""

from __future__ import annotations

import argparse
from pathlib import Path

# pretrain-face's flags and the face pretraining settings they set (what it was before 'voxface pretrain')
PRETRAIN_FACE_FLAGS = {"data": "data.root", "out": "trainer.out", "depth": "encoder.depth", "width": "encoder.width",
                       "input_size": "encoder.input_size", "embedding_size": "encoder.num_features",
                       "epochs": "trainer.epochs", "batch_size": "optim.batch_size", "lr": "optim.lr",
                       "margin": "head.margin", "scale": "head.scale", "heldout": "data.heldout_fraction",
                       "checkpoint_every": "trainer.checkpoint_every", "workers": "data.workers",
                       "seed": "trainer.seed"}


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

    face = commands.add_parser("pretrain-face", help="pretrain an IResNet face teacher (voxface pretrain with "
                               "encoder.name=iresnet; flags as before)")
    face.add_argument("--config", default=None, help="a YAML file or shipped name to start from (default: "
                      "arcface_torch's IResNet-34 settings)")
    face.add_argument("--data", type=Path, default=None,
                      help="<identity>/<image> folder, e.g. VoxSynth's teacher_faces (data.root)")
    face.add_argument("--out", type=Path, default=None, help="run folder: checkpoints, backbone.pth, pretrain.json "
                      "(trainer.out)")
    face.add_argument("--depth", type=int, default=None, choices=[18, 34, 50, 100], help="default 34")
    face.add_argument("--width", type=float, default=None, help="channel multiplier (default 1.0)")
    face.add_argument("--input-size", type=int, default=None, help="face size, a multiple of 16 (default 112)")
    face.add_argument("--embedding-size", type=int, default=None, help="default 512")
    face.add_argument("--epochs", type=int, default=None, help="default 20")
    face.add_argument("--batch-size", type=int, default=None, help="default 128")
    face.add_argument("--lr", type=float, default=None, help="peak SGD learning rate (default 0.1)")
    face.add_argument("--margin", type=float, default=None, help="ArcFace additive angular margin (default 0.5)")
    face.add_argument("--scale", type=float, default=None, help="ArcFace logit scale (default 64)")
    face.add_argument("--heldout", type=float, default=None, help="share of identities held out (default 0.1)")
    face.add_argument("--checkpoint-every", type=int, default=None, help="training steps between checkpoints "
                      "(default 200)")
    face.add_argument("--workers", type=int, default=None, help="data loader processes (default 2)")
    face.add_argument("--seed", type=int, default=None, help="default 0")
    face.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    face.add_argument("--quiet", action="store_true", help="no progress bar")
    face.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="further settings, as for voxface pretrain")
    face.set_defaults(func=run_face)


def run(args: argparse.Namespace) -> int:
    from voxface.training.pretrain import format_pretrain, load_pretrain_config, pretrain

    config = load_pretrain_config(args.config, args.overrides)
    print(format_pretrain(pretrain(config, resume=args.resume)))
    return 0


def run_face(args: argparse.Namespace) -> int:
    """``voxface pretrain-face``: ``voxface pretrain`` of an IResNet, its flags mapped onto the settings."""
    overrides = ["encoder.name=iresnet"] + [f"{key}={getattr(args, flag)}" for flag, key in PRETRAIN_FACE_FLAGS.items()
                                            if getattr(args, flag) is not None]
    if args.quiet:
        overrides.append("trainer.progress=false")
    args.overrides = overrides + list(args.overrides)
    return run(args)
