"""``voxface priors``: make the release priors (their own VoxSynth draw, both encoders pretrained, installed)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(commands: argparse._SubParsersAction) -> None:
    priors = commands.add_parser("priors", help="make the release priors: render their own VoxSynth draw, pretrain "
                                 "the face and voice encoders side by side, install them into the package")
    priors.add_argument("--work", type=Path, required=True, help="working folder: the rendered sets, both runs and "
                        "the release; an interrupted run resumes there")
    priors.add_argument("--face-identities", type=int, default=None, help="faces-only identities (default: 2000)")
    priors.add_argument("--voice-identities", type=int, default=None, help="voices-only identities (default: 2000)")
    priors.add_argument("--seed", type=int, default=None, help="seed of the release draw (default: 0)")
    priors.add_argument("--face", nargs="*", metavar="KEY=VALUE", help="overrides of voxsynth/release_face")
    priors.add_argument("--voice", nargs="*", metavar="KEY=VALUE", help="overrides of voxsynth/release_voice")
    priors.add_argument("--no-install", action="store_true", help="leave the package's shipped priors as they are "
                        "(the release stays in WORK/release)")
    priors.add_argument("--workers", type=int, default=None, help="rendering processes (default: all CPU cores)")
    priors.add_argument("--quiet", action="store_true", help="no progress bar")
    priors.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from voxface.synth.release import ReleaseDraw, format_release, make_release

    draw = ReleaseDraw(**{k: v for k, v in (("face_identities", args.face_identities),
                                            ("voice_identities", args.voice_identities), ("seed", args.seed))
                          if v is not None})
    overrides = {"face": args.face or [], "voice": args.voice or []}
    records = make_release(args.work, draw, install=not args.no_install, workers=args.workers, overrides=overrides,
                           progress=not args.quiet)
    print(format_release(records))
    where = "src/voxface/synth/priors" if not args.no_install else str(args.work / "release")
    print(f"weights and provenance: {where}")
    return 0
