"""The whole peers' benchmark (issue 24), from nothing: both feature stores extracted, every method trained and
evaluated on every list. Bar: under 5 minutes on 2 cores.

Uses a finished demo folder (``make demo``): its VoxSynth, face teacher and voice prior. Everything is made anew in
``--out`` (removed first), so nothing of the demo's own benchmark is reused.

    python benchmarks/bench_peers.py --demo runs/demo --out runs/bench_peers --jobs 1
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import torch

from voxface.benchmark import run_benchmark, store_overrides


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo", type=Path, default=Path("runs/demo"), help="a finished demo folder")
    parser.add_argument("--out", type=Path, default=Path("runs/bench_peers"))
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args()
    data, teacher = args.demo / "voxsynth", args.demo / "teacher" / "backbone.pth"
    prior = args.demo / "voice_prior" / "embedding_model.ckpt"
    for needed in (data, teacher, prior):
        if not needed.exists():
            raise SystemExit(f"{needed} is missing: run 'make demo' (or voxface demo --out {args.demo}) first")
    shutil.rmtree(args.out, ignore_errors=True)
    overrides = store_overrides(args.out, [f"data.root={data}", f"data.lists={data / 'protocol'}",
                                           f"face.weights={teacher}", f"audio.weights={prior}"])
    start = time.perf_counter()
    table = run_benchmark(args.out, "voxsynth", overrides=overrides, jobs=args.jobs)
    seconds = time.perf_counter() - start
    result = {"methods": len(table["methods"]), "jobs": args.jobs, "seconds": round(seconds, 1),
              "stages": table["seconds"], "bar_seconds": 300, "met": seconds < 300,
              "random_unseenunheard": {m: round(r["verification"]["random_unseenunheard"]["mean"], 1)
                                       for m, r in table["methods"].items()},
              "machine": f"{os.cpu_count()} CPU cores, torch threads {torch.get_num_threads()}"}
    print(json.dumps(result, indent=1))
    (args.out / "bench_peers.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
