"""The Gaussian backend's speed: scoring the ten real VoxCeleb1 lists from cached embeddings, and fitting.

1. Scoring: random 192-d embeddings (the full ECAPA size) stand in for a model's cached ones of every file the
   ten real veriflists name (scoring time does not depend on their values), and a backend is fitted on random
   identity-structured 192-d embeddings. Timed: the lists' files to matrix rows (once), then the cosine and the
   calibrated backend log-likelihood ratio of all 236,241 trials, then AUC, EER, Cllr and minCllr of both.
2. Fitting, with --checkpoint and --data: 'voxface backend fit' on a run's data, twice: the first embeds the
   training and validation identities (then cached), the second fits from the cache.

    python benchmarks/bench_backend.py
    python benchmarks/bench_backend.py --checkpoint runs/demo/train/full/checkpoints/best.ckpt --data runs/demo/voxsynth
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from voxface.evaluation.backend import EmbeddingSet, fit_gaussian_backend
from voxface.evaluation.evaluate import EmbeddingTable, score_trials, verification_metrics
from voxface.protocol import DataRoots, load_protocol


def _identity_structured(identities: int, per_identity: int, width: int, seed: int) -> EmbeddingSet:
    rng = np.random.default_rng(seed)
    ids = np.repeat(np.arange(identities), per_identity)
    shared = rng.standard_normal((identities, width))[ids]
    return EmbeddingSet(shared + 2 * rng.standard_normal(shared.shape), ids,
                        shared @ rng.standard_normal((width, width)) / np.sqrt(width)
                        + 2 * rng.standard_normal(shared.shape), ids)


def score_real_lists(width: int) -> None:
    protocol = load_protocol("voxceleb1")
    lists = protocol.all_verification()
    backend = fit_gaussian_backend(_identity_structured(901, 8, width, 0), _identity_structured(100, 8, width, 1))
    rng = np.random.default_rng(2)
    roots = DataRoots.from_root("/data/voxceleb1")  # paths only: nothing is read
    voice_files = {v for t in lists for v in t.voice_files}
    face_files = {f for t in lists for f in t.face_files}
    voices = {roots.voice(v): rng.standard_normal(width).astype(np.float32) for v in voice_files}
    faces = {roots.face(f): rng.standard_normal(width).astype(np.float32) for f in face_files}
    start = time.perf_counter()
    table = EmbeddingTable.build(voices, faces, voice_files, face_files, roots)
    indexed = time.perf_counter() - start
    start = time.perf_counter()
    scored = [score_trials(table, t, backend) for t in lists]
    scoring = time.perf_counter() - start
    start = time.perf_counter()
    for t, (keep, cosines, llr) in zip(lists, scored, strict=True):
        labels = t.labels[keep]
        verification_metrics(labels, cosines, 0, backend.calibrate_cosine(cosines))
        verification_metrics(labels, llr, 0, llr)
    metrics = time.perf_counter() - start
    trials = sum(len(keep) for keep, _, _ in scored)
    print(f"{trials} trials of the 10 real lists ({len(voices)} voices, {len(faces)} faces, {width}-d, backend "
          f"{backend.info['dims']} dims / {backend.info['canonical_pairs']} pairs): cosine + backend llr "
          f"{scoring:.2f} s; AUC, EER, Cllr, minCllr of both {metrics:.2f} s; files to rows once {indexed:.2f} s; "
          f"CPU cores {os.cpu_count()}")


def fit_timing(checkpoint: Path, data: Path, lists: str) -> None:
    from voxface.evaluation.backend import fit_backend

    with tempfile.TemporaryDirectory() as folder:
        for attempt in ("first (embeds train + val identities)", "again (embeddings from the cache)"):
            start = time.perf_counter()
            backend = fit_backend(checkpoint, data, lists, out=folder)
            info = backend.info
            print(f"backend fit, {attempt}: {time.perf_counter() - start:.1f} s wall; embedding "
                  f"{info['embed_seconds']:.1f} s, fitting {info['fit_seconds']:.2f} s "
                  f"({info['train_identities']} train identities, {info['train_voices']} voices, "
                  f"{info['train_faces']} faces; {info['val_trials']} validation trials)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=192, help="embedding size (default: %(default)s)")
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--data", type=Path)
    parser.add_argument("--lists", default=None, help="default: DATA/protocol when it exists, else voxceleb1")
    args = parser.parse_args()
    score_real_lists(args.width)
    if args.checkpoint and args.data:
        lists = args.lists or (str(args.data / "protocol") if (args.data / "protocol").is_dir() else "voxceleb1")
        fit_timing(args.checkpoint, args.data, lists)


if __name__ == "__main__":
    main()
