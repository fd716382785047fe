"""``voxface protocol stats|check|manifest``: the cross-modal protocol's lists, file checks and manifests."""

from __future__ import annotations

import argparse
from pathlib import Path

from voxface.commands.common import add_lists_arg, add_root_args, lists_for


def add_parser(commands: argparse._SubParsersAction) -> None:
    protocol = commands.add_parser(
        "protocol", help="VoxCeleb1 cross-modal protocol: lists, statistics, file checks, manifests")
    protocol_commands = protocol.add_subparsers(dest="protocol_command", required=True, metavar="SUBCOMMAND",
                                                help="stats, check or manifest")
    stats = protocol_commands.add_parser("stats", help="identities, trials and positives of every list (paper Table 1)")
    add_lists_arg(stats, None)
    stats.set_defaults(func=run_stats)
    check = protocol_commands.add_parser("check", help="which files the lists need are present, missing or unreadable")
    add_root_args(check)
    add_lists_arg(check, "ROOT")
    check.add_argument("--workers", type=int, default=8, help="threads reading files (default: %(default)s)")
    check.add_argument("--quick", action="store_true",
                       help="only look for each file, without decoding it (a minute for all of VoxCeleb1's)")
    check.add_argument("--report", type=Path, default=None,
                       help="write every missing and unreadable file to this text file, one per line with the "
                            "reader's reason (the screen shows three)")
    check.set_defaults(func=run_check)
    manifest = protocol_commands.add_parser(
        "manifest", help="train (minus seen-heard videos) and val manifests of a data set")
    add_root_args(manifest)
    add_lists_arg(manifest, "ROOT")
    manifest.add_argument("--out", type=Path, required=True, help="folder for train.json and val.json")
    manifest.set_defaults(func=run_manifest)


def run_stats(args: argparse.Namespace) -> int:
    from voxface.protocol import load_protocol
    from voxface.protocol.stats import format_stats

    print(format_stats(load_protocol(args.lists)))
    return 0


def run_check(args: argparse.Namespace) -> int:
    from voxface.errors import ConfigError
    from voxface.protocol import DataRoots, load_protocol
    from voxface.protocol.check import check_files, format_check, write_report

    if args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {args.workers}")
    lists = lists_for(args.root, args.lists)
    roots = DataRoots.from_root(args.root, args.audio_dir, args.faces_dir)
    if args.report is not None and args.report.is_dir():
        raise ConfigError(f"--report {args.report} is a folder; give a file for the list of bad files")
    results = check_files(load_protocol(lists), roots, workers=args.workers, quick=args.quick)
    print(format_check(results, quick=args.quick))
    if args.report is not None:
        print(f"{write_report(results, args.report)} missing or unreadable files, each with its reason: {args.report}")
    return 1 if any(r.missing or r.unreadable for r in results) else 0


def run_manifest(args: argparse.Namespace) -> int:
    from voxface.errors import ProtocolError
    from voxface.protocol import SPLIT_TRAIN, SPLIT_VAL, DataRoots, build_manifest, load_protocol

    if args.out.exists() and not args.out.is_dir():  # said now, not after the manifests are built
        raise ProtocolError(f"--out {args.out} is a file; give a folder for train.json and val.json")
    protocol = load_protocol(lists_for(args.root, args.lists))
    roots = DataRoots.from_root(args.root, args.audio_dir, args.faces_dir)
    for split, file_name in ((SPLIT_TRAIN, "train.json"), (SPLIT_VAL, "val.json")):
        manifest = build_manifest(protocol, roots, split)
        manifest.save(args.out / file_name)
        print(f"{manifest.summary()} -> {args.out / file_name}")
    return 0
