"""``voxface train``: the voice-face model (paper Algorithm 1) from a YAML configuration; ``--resume``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from voxface.errors import VoxfaceError


def add_parser(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser("train", help="train the voice-face model (paper Algorithm 1) from a YAML config")
    train.add_argument("--config", default=None,
                       help="a YAML file or a shipped name such as voxsynth/full (src/voxface/configs/); "
                            "else defaults + overrides")
    train.add_argument("--resume", action="store_true",
                       help="continue a run from its last.ckpt: the run folder --config names (RUN or "
                            "RUN/config.yaml, from any folder), else trainer.out")
    train.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="e.g. optim.batch_size=32 trainer.epochs=5")
    train.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
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
        config = load_config(args.config, args.overrides)
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
