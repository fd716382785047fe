"""Feature mode on VoxSynth's default size (issue 23 item 8): extract once, then train and evaluate from the stores.

Uses a finished demo folder (``make demo``): its VoxSynth, face teacher and voice prior. Extracts both halves into
feature stores (reused when they exist), trains the paper's method (``voxsynth/base``, the demo's number of steps)
on them, and evaluates from them, timing each stage apart. Bars: training under 10 s, evaluation under 5 s
(2 cores). Evaluation is timed twice: scoring every list (AUC, EER, Cllr, DeLong intervals, matching) with the
decomposition, and the same with the report's plots.

    python benchmarks/bench_feature_mode.py --demo runs/demo --out runs/bench_feature_mode
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import torch

from voxface.evaluation.evaluate import evaluate
from voxface.features import extract_features
from voxface.training.config import load_config
from voxface.training.run import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo", type=Path, default=Path("runs/demo"), help="a finished demo folder")
    parser.add_argument("--out", type=Path, default=Path("runs/bench_feature_mode"))
    parser.add_argument("--config", default="voxsynth/base", help="the training config (default: the demo's)")
    args = parser.parse_args()
    data, teacher = args.demo / "voxsynth", args.demo / "teacher" / "backbone.pth"
    prior = args.demo / "voice_prior" / "embedding_model.ckpt"
    for needed in (data, teacher, prior):
        if not needed.exists():
            raise SystemExit(f"{needed} is missing: run 'make demo' (or voxface demo --out {args.demo}) first")
    timings: dict[str, float] = {}
    for name, encoder, weights in (("faces", "iresnet", teacher), ("voices", "ecapa", prior)):
        start = time.perf_counter()
        extract_features(encoder, weights, data, args.out / "features" / name, progress=False)
        timings[f"extract {name} (or reuse)"] = time.perf_counter() - start
    run = args.out / "run"
    shutil.rmtree(run, ignore_errors=True)
    config = load_config(args.config, [f"data.root={data}", f"data.lists={data / 'protocol'}",
                                       f"face.weights={teacher}", f"audio.weights={prior}",
                                       f"features.face={args.out / 'features' / 'faces'}",
                                       f"features.voice={args.out / 'features' / 'voices'}", f"trainer.out={run}",
                                       "trainer.progress=false", "data.workers=0"])
    start = time.perf_counter()
    summary = train(config)
    timings["train"] = time.perf_counter() - start
    checkpoint = run / "checkpoints" / "best.ckpt"
    start = time.perf_counter()
    scored = evaluate(checkpoint, data, data / "protocol", bootstrap=0)
    timings["evaluate: every list + decomposition"] = time.perf_counter() - start
    start = time.perf_counter()
    evaluate(checkpoint, data, data / "protocol", out=args.out / "eval", bootstrap=0)
    timings["evaluate: the same + plots"] = time.perf_counter() - start
    random = scored.verification["random_unseenunheard"]
    result = {"steps": summary["steps"], "best_val_auc": summary["best_val_auc"],
              "random_unseenunheard_auc": random["auc"], "seconds": {k: round(v, 2) for k, v in timings.items()},
              "machine": f"{os.cpu_count()} CPU cores, torch threads {torch.get_num_threads()}"}
    print(json.dumps(result, indent=1))
    (args.out / "bench_feature_mode.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
