"""``voxface extract``: every voice or face file of a data root embedded once into a feature store."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(commands: argparse._SubParsersAction) -> None:
    extract = commands.add_parser(
        "extract", help="embed every voice or face file of a data root once into a feature store (resumable)")
    extract.add_argument("--encoder", required=True, help="a registered encoder: its modality picks the files")
    extract.add_argument("--weights", type=Path, required=True, help="its weights file or HuggingFace folder")
    extract.add_argument("--data", type=Path, required=True, help="data root holding wav/ and unzippedFaces/")
    extract.add_argument("--lists", default=None,
                         help="only the files of the identities of these lists: 'voxceleb1' or a protocol folder "
                              "(default: every file)")
    extract.add_argument("--out", type=Path, required=True, help="the feature store folder")
    extract.add_argument("--crop", type=float, default=None, help="centre crop of each voice, seconds (default: "
                                                                    "whole clips)")
    extract.add_argument("--batch-size", type=int, default=32,
                         help="files embedded at once, per process (default: %(default)s)")
    extract.add_argument("--devices", type=int, default=None,
                         help="processes: one per GPU (default: every GPU); on a machine without a GPU, processes "
                              "sharing the CPU cores (default: 1)")
    extract.add_argument("--quiet", action="store_true", help="no progress bar")
    extract.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from voxface.features import extract_features
    from voxface.features.store import META, read_meta

    finished = (args.out / META).is_file() and read_meta(args.out).get("complete")
    store = extract_features(args.encoder, args.weights, args.data, args.out, lists=args.lists,
                             crop_seconds=args.crop, batch_size=args.batch_size, devices=args.devices,
                             progress=not args.quiet)
    meta = store.meta
    print(f"{meta['count']} {meta['modality']} files by {meta['encoder']} ({meta['dim']}-d, "
          f"{len(meta['views'])} view{'s' if len(meta['views']) > 1 else ''}), {meta['count'] - len(store)} "
          f"unreadable -> {args.out}" + (" (reused: already extracted the same way)" if finished else ""))
    return 0
