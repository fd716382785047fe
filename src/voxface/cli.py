"""The ``voxface`` command line. Every error a user can cause ends in one line, not a traceback.

Each command lives in its own module under ``voxface.commands`` (``add_parser`` and ``run``); building the parser
imports only those small modules, and a command imports torch and the rest inside its ``run``, after its
arguments have been checked.
"""

from __future__ import annotations

import argparse
import logging
import sys

from voxface import __version__
from voxface.commands import (
    app,
    backend,
    benchmark,
    demo,
    embed,
    evaluate,
    extract,
    pretrain,
    priors,
    protocol,
    report,
    score,
    synth,
    train,
)
from voxface.errors import VoxfaceError

# in the order ``voxface --help`` lists them
COMMANDS = (protocol, synth, pretrain, priors, train, evaluate, backend, report, score, embed, extract, benchmark, app,
            demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voxface", description="Voice-face identity embeddings: data, training, evaluation.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="version", version=f"voxface {__version__}",
                        help="print voxface's version and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s")
    try:
        return args.func(args)
    except VoxfaceError as err:
        print(f"voxface: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("voxface: interrupted", file=sys.stderr)
        return 130
