"""Evaluation speed: scoring all ten real VoxCeleb1 veriflists from cached embeddings, and embeddings/s.

1. Random 192-d embeddings stand in for a model's cached ones (scoring time does not depend on them):
   cosine scores, AUC with its 95% interval (DeLong's, or --ci bootstrap), EER and minCllr for all ~236k trials.
2. With --checkpoint and --data: voices and faces embedded per second by the real Embedder.

    python benchmarks/bench_eval.py [--ci delong|bootstrap] [--bootstrap 1000]
    python benchmarks/bench_eval.py --checkpoint runs/demo/train/full/checkpoints/best.ckpt --data runs/demo/voxsynth
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from voxface.evaluation.evaluate import verification_metrics
from voxface.protocol import load_protocol


def score_real_lists(ci: str, bootstrap: int) -> None:
    protocol = load_protocol("voxceleb1")
    start = time.perf_counter()
    lists = protocol.all_verification()
    parsed = time.perf_counter() - start
    rng = np.random.default_rng(0)
    voices = {v: rng.standard_normal(192).astype(np.float32) for t in lists for v in t.voice_files}
    faces = {f: rng.standard_normal(192).astype(np.float32) for t in lists for f in t.face_files}
    start = time.perf_counter()
    trials = 0
    for t in lists:
        a = np.stack([voices[v] for v in t.voice_files])
        b = np.stack([faces[f] for f in t.face_files])
        scores = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        verification_metrics(t.labels, scores, ci, bootstrap)
        trials += len(t)
    seconds = time.perf_counter() - start
    what = f"{bootstrap} bootstrap resamples" if ci == "bootstrap" else f"{ci} interval"
    print(f"scored {trials} trials of the 10 real lists ({len(voices)} voices, {len(faces)} faces) in "
          f"{seconds:.1f} s (cosine, AUC, {what}, EER, minCllr); parsing the lists took {parsed:.1f} s; "
          f"CPU cores {os.cpu_count()}")


def embedding_rate(checkpoint: Path, data: Path, count: int) -> None:
    from voxface.evaluation.checkpoint import load_trained_model
    from voxface.evaluation.embedding import Embedder
    from voxface.protocol import DataRoots

    model, config = load_trained_model(checkpoint)
    embedder = Embedder(model, batch_size=32, workers=2)
    roots = DataRoots.from_root(data)
    trials = load_protocol(data / "protocol").verification("random", "unseenunheard")
    for kind, files, root in (("voice", trials.voice_files, roots.voice), ("face", trials.face_files, roots.face)):
        paths = sorted({root(f) for f in files})[:count]
        start = time.perf_counter()
        embedder.embed(paths, kind)
        seconds = time.perf_counter() - start
        print(f"{kind}: {len(paths) / seconds:.1f} embeddings/s ({len(paths)} files, whole clips, "
              f"{config.audio.encoder} / IResNet {model.face_size}px, {embedder.device})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ci", choices=["delong", "bootstrap", "none"], default="delong")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--data", type=Path)
    parser.add_argument("--count", type=int, default=500)
    args = parser.parse_args()
    score_real_lists(args.ci, args.bootstrap)
    if args.checkpoint and args.data:
        embedding_rate(args.checkpoint, args.data, args.count)


if __name__ == "__main__":
    main()
