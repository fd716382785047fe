"""``voxface app``: a local web page that ranks faces for a voice and browses a run's results."""

from __future__ import annotations

import argparse
from pathlib import Path

from voxface.errors import VoxfaceError


def add_parser(commands: argparse._SubParsersAction) -> None:
    app = commands.add_parser("app", help="a local web page: rank faces for a voice, browse a run's results")
    app.add_argument("--checkpoint", type=Path, required=True, help="a 'voxface train' checkpoint (.ckpt)")
    app.add_argument("--gallery", type=Path, default=None,
                     help="folder of faces (and voices) to pick from (default: the run's own test identities)")
    app.add_argument("--eval", type=Path, default=None, help="an evaluation or demo folder for the Results tab")
    app_backend = app.add_mutually_exclusive_group()
    app_backend.add_argument("--backend", type=Path, default=None,
                             help="a fitted backend folder for probabilities (default: RUN/backend when it exists)")
    app_backend.add_argument("--no-backend", action="store_true",
                             help="rank by cosine only: use no backend, not even the run's own RUN/backend")
    app.add_argument("--host", default="127.0.0.1",
                     help="address to serve on (default: %(default)s, this machine only; 0.0.0.0: every interface)")
    app.add_argument("--port", type=int, default=7860, help="port to serve on (default: %(default)s)")
    app.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        from voxface.app import serve
    except ImportError as err:
        raise VoxfaceError(f"voxface app needs its extra ({err.name} is missing): pip install 'voxface[app]'") from None

    serve(args.checkpoint, args.gallery, args.eval, args.backend, args.host, args.port,
          use_backend=not args.no_backend)
    return 0
