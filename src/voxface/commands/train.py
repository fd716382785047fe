"""``voxface train``: the voice-face model (paper Algorithm 1) from a YAML configuration; ``--resume``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from voxface.commands.common import add_demo_arg, say_from_demo
from voxface.demo_record import read_demo
from voxface.errors import ConfigError, VoxfaceError


def add_parser(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser("train", help="train the voice-face model (paper Algorithm 1) from a YAML config")
    train.add_argument("--config", default=None,
                       help="a YAML file or a shipped name such as voxsynth/full (src/voxface/configs/); "
                            "else defaults + overrides")
    train.add_argument("--resume", action="store_true",
                       help="continue a run from its last.ckpt: the run folder --config names (RUN or "
                            "RUN/config.yaml, from any folder), else trainer.out")
    add_demo_arg(train, "the data root, lists, face and voice weights, face size, batch size and the other "
                 "settings its runs were made with, its configuration unless --config, and trainer.out "
                 "RUN/train/<config name> unless given")
    train.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="e.g. optim.batch_size=32 trainer.epochs=5")
    train.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.demo is not None and args.resume:
        raise ConfigError("--demo starts a run on a demo's settings; --resume continues a run with its own: leave "
                          "out --demo")
    from voxface.training.config import load_config, relocate

    if args.resume:  # a run resumes with its own saved settings (only what may change, e.g. epochs, from here)
        folder = run_folder(args.config, args.overrides)
        saved = folder / "config.yaml"
        if not saved.is_file():
            raise VoxfaceError(f"--resume: no run in {folder.absolute()}; a run started with overrides resumes from "
                               "its own settings: voxface train --config RUN/config.yaml --resume")
        # The run's own files where the folder is now, its data where recorded (or moved along with it).
        config = relocate(load_config(saved, args.overrides, check_paths=False), folder).validate()
    else:
        config = load_config(*demo_settings(args) if args.demo is not None else (args.config, args.overrides))
    from voxface.training.resume import position
    from voxface.training.run import train

    summary = train(config, resume=args.resume, resume_option="--resume")
    where = position(summary["steps"], summary["steps_per_epoch"])
    if summary["interrupted"] and not summary["last_checkpoint"]:
        print(f"interrupted at {where}, before its first checkpoint: start it again", file=sys.stderr)
        return 130
    if summary["interrupted"]:
        print(f"interrupted at {where}; continue with: voxface train --config "
              f"{Path(summary['out']) / 'config.yaml'} --resume", file=sys.stderr)
        return 130
    print(f"trained to {where} in {summary['seconds']} s; "
          f"validation AUC {_rounded(summary['val_auc'])} (best {_rounded(summary['best_val_auc'])}); "
          f"run folder {summary['out']}")
    return 0


def run_folder(config: str | None, overrides: list[str]) -> Path:
    """The run folder ``--resume`` continues: the one ``--config`` names (``RUN`` or ``RUN/config.yaml``, wherever it
    is now) unless ``trainer.out=`` is given, else ``trainer.out``."""
    given = Path(config) if config else None
    if given is not None and given.is_dir():
        return given
    if (given is not None and given.name == "config.yaml" and (given.parent / "checkpoints").is_dir()
            and not any(o.startswith("trainer.out=") for o in overrides)):
        return given.parent
    from voxface.training.config import load_config

    return Path(load_config(config, overrides, check_paths=False).trainer.out)


def _rounded(value: float | None) -> str:
    return "none yet" if value is None else f"{value:.3f}"


def demo_settings(args: argparse.Namespace) -> tuple[str | None, list[str]]:
    """(configuration, overrides) of a run on the settings of the demo in ``args.demo`` (``demo.json``): the demo's
    configuration unless ``--config``; its runs' overrides, then ``trainer.out=RUN/train/<config name>``, then the
    command line's."""
    record = read_demo(args.demo)
    config = args.config or record.config
    settings = list(record.train)
    if not any(o.partition("=")[0].strip() == "trainer.out" for o in args.overrides):
        settings.append(f"trainer.out={args.demo / 'train' / Path(config or 'defaults').stem}")
    say_from_demo(args.demo, ([f"--config {config}"] if config else []) + settings)
    return config, [*settings, *args.overrides]
