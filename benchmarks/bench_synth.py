"""VoxSynth generation time at a given size and number of worker processes.

    python benchmarks/bench_synth.py                       # default size (300 + 300 teacher identities)
    python benchmarks/bench_synth.py --identities 300 --workers 1 2
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from voxface.synth.build import SynthConfig, generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--identities", type=int, default=300)
    parser.add_argument("--workers", type=int, nargs="+", default=[os.cpu_count() or 1])
    args = parser.parse_args()
    for workers in args.workers:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            summary = generate(tmp, SynthConfig(identities=args.identities), workers=workers, progress=False)
            seconds = time.perf_counter() - start
            size = sum(f.stat().st_size for f in Path(tmp).rglob("*") if f.is_file())
        print(f"{args.identities} identities (+{summary['identities']['teacher']} teacher), {workers} workers: "
              f"{seconds:.1f} s; {summary['voice_clips']} clips, {summary['face_frames']} frames, "
              f"{summary['teacher_images']} teacher images, {size / 2**20:.0f} MiB; CPU cores: {os.cpu_count()}")


if __name__ == "__main__":
    main()
