"""``voxface synth``: generate VoxSynth, the built-in synthetic benchmark (VoxCeleb1 layout)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(commands: argparse._SubParsersAction) -> None:
    synth = commands.add_parser("synth", help="generate VoxSynth, the built-in synthetic benchmark (VoxCeleb1 layout)")
    synth.add_argument("--out", type=Path, required=True, help="output folder (an interrupted run resumes there)")
    synth.add_argument("--identities", type=int, default=None, help="voice-face identities (default: the demo's, 400)")
    synth.add_argument("--teacher-identities", type=int, default=None,
                       help="faces-only identities for pretraining a face teacher (default: 400; 0: none)")
    synth.add_argument("--teacher-voices", type=int, default=None,
                       help="voices-only identities for pretraining a voice prior (default: 200; 0: none)")
    synth.add_argument("--seed", type=int, default=0, help="random seed; the output is deterministic for it")
    synth.add_argument("--workers", type=int, default=None, help="processes (default: all CPU cores)")
    synth.add_argument("--preview", action="store_true", help="also write PNGs of faces and voice spectrograms")
    synth.add_argument("--legibility", type=int, nargs="?", const=600, default=None, metavar="IDENTITIES",
                       help="also measure how legible the media are: supervised single-sample readers of the demo's "
                            "size regress the true knobs, R² per knob on held-out identities, in OUT/legibility.json "
                            "(a draw of its own, independent of --seed: IDENTITIES training identities, default 600, "
                            "and a quarter as many held out; 12-16 minutes on 2 cores; exits 0 whether or not the "
                            "bars are met)")
    synth.add_argument("--quiet", action="store_true", help="no progress bar")
    synth.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from voxface.synth.build import SynthConfig, format_synth_summary, generate
    from voxface.synth.preview import write_preview

    sizes = {"identities": args.identities, "teacher_identities": args.teacher_identities,
             "teacher_voices": args.teacher_voices}
    config = SynthConfig(seed=args.seed, **{k: v for k, v in sizes.items() if v is not None})
    readers = None
    if args.legibility is not None:  # checked before the data set is generated
        from voxface.synth.legibility import LegibilityConfig

        readers = LegibilityConfig.sized(args.legibility)
        readers.validate()
    summary = generate(args.out, config, workers=args.workers, progress=not args.quiet)
    print(format_synth_summary(args.out, summary))
    small = {split: n for split, n in summary["identities"].items() if split in ("val", "test") and n < 8}
    if small:
        print("warning: only " + " and ".join(f"{n} {split}" for split, n in small.items()) + " identities: "
              "checkpoint selection, calibration and the test AUCs will be noisy; --identities 100 or more "
              "gives at least 8 of each", file=sys.stderr)
    if args.preview:
        for path in write_preview(args.out):
            print(f"preview: {path}")
    if readers is not None:
        from voxface.synth.legibility import legibility_beside

        print(legibility_beside(args.out, readers, config.model, workers=args.workers))
    return 0
