"""Start-up: how soon ``voxface`` answers, measured as a user runs it (a fresh ``python -m voxface`` each time).

1. ``voxface --version``;
2. ``voxface score`` on a missing voice (bar: at most 1 s): its inputs are checked before torch is imported;
3. a full ``voxface score`` of one voice against one face with a demo's full run (bar: at most 4 s): the checkpoint
   loaded, both embedded, the backend's probability where the run has one.

    python benchmarks/bench_startup.py --demo runs/demo [--checkpoint CKPT] [--repeats 5]

Each command runs ``--repeats`` times; the median and the slowest are printed. On a machine shared with other jobs
the figures are upper bounds: run it on a quiet one.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BARS = {"missing file": 1.0, "full score": 4.0}


def timed(command: list[str], expect: int) -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "voxface", *command], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != expect:
        raise SystemExit(f"voxface {' '.join(command)} exited {done.returncode}, not {expect}:\n{done.stderr}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--demo", type=Path, required=True, help="a finished 'voxface demo' folder")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="the run to score with (default: DEMO/train/full/checkpoints/best.ckpt)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    checkpoint = args.checkpoint or args.demo / "train" / "full" / "checkpoints" / "best.ckpt"
    voice = next((args.demo / "voxsynth" / "wav").rglob("*.wav"))
    face = next((args.demo / "voxsynth" / "unzippedFaces").rglob("*.jpg"))
    with tempfile.TemporaryDirectory() as scratch:
        missing = str(Path(scratch) / "nope.wav")
        cases = {"--version": (["--version"], 0),
                 "missing file": (["score", "--checkpoint", str(checkpoint), missing, str(face)], 2),
                 "full score": (["score", "--checkpoint", str(checkpoint), str(voice), str(face)], 0)}
        timed(cases["full score"][0], 0)  # once first: the files in the page cache, as for a user's second try
        for name, (command, expect) in cases.items():
            times = [timed(command, expect) for _ in range(args.repeats)]
            bar = BARS.get(name)
            verdict = "" if bar is None else f"  (bar {bar:.0f} s: {'met' if max(times) <= bar else 'NOT met'})"
            print(f"{name:<13} median {statistics.median(times):.2f} s, slowest {max(times):.2f} s over "
                  f"{args.repeats}{verdict}")


if __name__ == "__main__":
    main()
