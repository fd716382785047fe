"""The ``voxface`` command line. Every error a user can cause ends in one line, not a traceback.

Each command lives in its own module under ``voxface.commands`` (``add_parser`` and ``run``); building the parser
imports only those small modules, and a command imports torch and the rest inside its ``run``, after its
arguments have been checked.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import NoReturn

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


class Parser(argparse.ArgumentParser):
    """argparse's parser with voxface's one-line errors: a flag's bad value or a missing argument ends in
    ``voxface: error: COMMAND --flag: ...`` and status 2, without the usage block (``--help`` prints that); the
    sub-command parsers ``add_subparsers`` makes are of this class too."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("voxface").strip()  # "demo", "protocol check"; "" for voxface itself
        if message.startswith("argument "):  # "argument --seed: invalid int value: 'nan'"
            where = " ".join(filter(None, (command, message.removeprefix("argument "))))
        else:  # "the following arguments are required: --out"
            where = f"{command}: {message}" if command else message
        self.exit(2, f"voxface: error: {where}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="voxface", description="Voice-face identity embeddings: data, training, evaluation.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="version", version=f"voxface {__version__}",
                        help="print voxface's version and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     help="one of these; voxface COMMAND --help lists its flags")
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


def configure_logging(verbose: bool) -> None:
    """voxface's own messages (the ``voxface`` logger) at INFO, every other library's at WARNING: their INFO lines
    (torch's cache statistics at exit, say) are nothing a user can act on. ``--verbose``: everything at DEBUG."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(message)s")
    logging.getLogger("voxface").setLevel(logging.DEBUG if verbose else logging.INFO)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    try:
        return args.func(args)
    except VoxfaceError as err:
        print(f"voxface: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("voxface: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into a reader that stopped (| head): quietly, as a shell tool ends
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes at exit
        return 141
