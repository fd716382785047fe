"""``voxface score``: one voice against faces with a trained checkpoint, ranked."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from voxface.commands.common import require
from voxface.errors import ConfigError


def add_parser(commands: argparse._SubParsersAction) -> None:
    score = commands.add_parser("score", help="score one voice against faces with a trained checkpoint")
    score.add_argument("--checkpoint", type=Path, required=True, help="a 'voxface train' checkpoint (.ckpt)")
    score.add_argument("--crop", type=float, default=None, help="centre-crop the voice to this many seconds")
    which = score.add_mutually_exclusive_group()
    which.add_argument("--backend", type=Path, default=None,
                       help="a 'voxface backend fit' folder: also give the probability of a match "
                            "(default: RUN/backend when it exists)")
    which.add_argument("--no-backend", action="store_true",
                       help="cosine scores only: use no backend, not even the run's own RUN/backend (e.g. to score "
                            "with another --crop than it was fitted on)")
    score.add_argument("--prior", type=float, default=0.5,
                       help="prior probability that a face is the speaker's, for the probability (default: 0.5)")
    score.add_argument("voice", type=Path, help="the voice: an audio file (.wav, .flac, ...)")
    score.add_argument("faces", type=Path, nargs="+", help="the faces to rank for it: one or more image files")
    score.set_defaults(func=run)


def check(args: argparse.Namespace) -> None:
    """Every input of ``voxface score`` exists and every value is in range, checked before torch is imported: the
    first fault in the order the arguments are declared (checkpoint, backend, voice, faces) in one line."""
    require(args.checkpoint, "--checkpoint")
    require(args.backend, "--backend", kind="folder")
    require(args.voice, "voice")
    for face in args.faces:
        require(face, "face")
    from voxface.media.audio import check_crop  # numpy and the audio readers: no torch yet

    check_crop(args.crop, "--crop")
    if not 0 < args.prior < 1:
        raise ConfigError(f"--prior must lie strictly between 0 and 1, got {args.prior}")


def run(args: argparse.Namespace) -> int:
    check(args)
    from voxface.evaluation.api import VoiceFaceScorer, default_backend
    from voxface.evaluation.backend import NO_BACKEND

    backend = None if args.no_backend else args.backend if args.backend is not None else default_backend(
        args.checkpoint)
    if backend is not None and args.backend is None:
        print(f"(probabilities from {backend}, the run's fitted backend; --no-backend for cosine scores only)",
              file=sys.stderr)
    matches = VoiceFaceScorer(args.checkpoint, crop_seconds=args.crop, backend=backend, prior=args.prior,
                              without_backend=NO_BACKEND).score(args.voice, args.faces)
    with_probability = matches[0].probability is not None
    print("rank  cosine" + "  P(same)" * with_probability + "  face")
    for rank, match in enumerate(sorted(matches, key=lambda m: -m.rank_score), start=1):
        p = f"  {match.probability:7.3f}" if with_probability else ""
        print(f"{rank:>4}  {match.cosine:+.3f}{p}  {match.face}")
    if with_probability:
        print(f"P(same): the calibrated probability that the voice and the face are one person, at a prior of "
              f"{args.prior:g} (--prior)")
    elif not args.no_backend:
        print("(no probability: pass --backend RUN/backend, fitted with 'voxface backend fit')", file=sys.stderr)
    return 0
