"""How much of its knobs one VoxSynth sample carries (issue 22): supervised single-sample readers of the demo's
size, R² per knob on held-out identities, and the CPU time it takes.

    python benchmarks/bench_legibility.py                          # both modalities, the default draw (~16 min)
    python benchmarks/bench_legibility.py --modalities voice --out runs/legibility_voice.json
    python benchmarks/bench_legibility.py --no-channel             # blame: voices without their recording channel

``--no-channel`` and ``--still-scene`` render without one nuisance (the per-video channel; the per-video scene and
per-frame expression), to tell which one costs a knob its legibility.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
from dataclasses import replace
from pathlib import Path
from unittest import mock

import numpy as np
import torch

from voxface.synth import face, voice
from voxface.synth.legibility import LegibilityConfig, format_legibility, measure_legibility


def _neutral_channel(_rng: np.random.Generator) -> voice.Channel:
    return voice.Channel(eq_freq=1000.0, eq_gain_db=0.0, lowpass=7900.0, rt60=0.01, reverb_mix=0.0, snr_db=80.0,
                         noise_colour=0.0)


def _still_scene(_rng: np.random.Generator) -> face.Scene:
    return face.Scene(background=((128, 128, 128), (128, 128, 128)), light_side=0.0, light_level=1.0,
                      cast=(1.0, 1.0, 1.0), roll=0.0, yaw=0.0, scale=1.0, shift=(0.0, 0.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modalities", nargs="+", default=["voice", "face"], choices=["voice", "face"])
    parser.add_argument("--identities", type=int, default=LegibilityConfig.identities,
                        help="the readers' training identities; a quarter as many are held out (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=LegibilityConfig.epochs, help="default: %(default)s")
    parser.add_argument("--seed", type=int, default=LegibilityConfig.seed, help="the draw and the readers' start")
    parser.add_argument("--no-channel", action="store_true", help="voices without their per-video channel")
    parser.add_argument("--still-scene", action="store_true", help="faces in one neutral scene (expression remains)")
    parser.add_argument("--out", type=Path, default=None, help="also write the result as JSON here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    config = replace(LegibilityConfig.sized(args.identities), epochs=args.epochs, seed=args.seed)
    with (mock.patch.object(voice.Channel, "draw", _neutral_channel) if args.no_channel else mock.MagicMock(),
          mock.patch.object(face.Scene, "draw", _still_scene) if args.still_scene else mock.MagicMock()):
        result = measure_legibility(config, modalities=tuple(args.modalities), workers=os.cpu_count())
    result["machine"] = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                         "torch_threads": torch.get_num_threads(),
                         "nuisances_off": [n for n, off in (("channel", args.no_channel),
                                                             ("scene", args.still_scene)) if off]}
    print(format_legibility(result))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
