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

from voxface.evaluation.evaluate import EmbeddingTable, score_trials, verification_metrics
from voxface.media.cache import save_npz_atomic
from voxface.protocol import DataRoots, load_protocol
from voxface.scoring.backend import EmbeddingSet, fit_gaussian_backend


def _identity_structured(identities: int, per_identity: int, width: int, seed: int) -> EmbeddingSet:
    """Voices and faces sharing a 16-d identity part (correlation about 0.5 per dimension), the rest noise."""
    rng = np.random.default_rng(seed)
    ids = np.repeat(np.arange(identities), per_identity)
    shared = np.c_[rng.standard_normal((identities, 16))[ids], np.zeros((len(ids), width - 16))]
    noise = rng.standard_normal((2, *shared.shape))
    return EmbeddingSet(shared + noise[0], ids, shared + noise[1], ids)


def score_real_lists(width: int, repeats: int) -> None:
    protocol = load_protocol("voxceleb1")
    lists = protocol.all_verification()
    backend = fit_gaussian_backend(_identity_structured(901, 8, width, 0), _identity_structured(100, 8, width, 1))
    rng = np.random.default_rng(2)
    roots = DataRoots.from_root("/data/voxceleb1")  # paths only: no media is read
    voice_paths = sorted(str(roots.voice(v)) for v in {v for t in lists for v in t.voice_files})
    face_paths = sorted(str(roots.face(f)) for f in {f for t in lists for f in t.face_files})
    with tempfile.TemporaryDirectory() as folder:
        caches = []
        for name, paths in (("voices", voice_paths), ("faces", face_paths)):  # evaluate's cache format
            caches.append(Path(folder) / f"{name}.npz")
            save_npz_atomic(caches[-1], paths=np.array(paths), stamps=np.array(["0:0"] * len(paths)),
                            embeddings=rng.standard_normal((len(paths), width)).astype(np.float32))
        runs = []
        for _ in range(repeats):
            clock = [time.perf_counter()]
            voices, faces = (np.load(cache, allow_pickle=False) for cache in caches)
            table = EmbeddingTable.from_arrays(list(voices["paths"]), voices["embeddings"], list(faces["paths"]),
                                               faces["embeddings"], roots, backend)
            clock.append(time.perf_counter())
            scored = [score_trials(table, t, backend) for t in lists]
            clock.append(time.perf_counter())
            for t, (keep, cosines, llr) in zip(lists, scored, strict=True):
                labels = t.labels[keep]
                verification_metrics(labels, cosines, "none", llr=backend.calibrate_cosine(cosines))
                verification_metrics(labels, llr, "none", llr=llr)
            clock.append(time.perf_counter())
            runs.append(np.diff(clock))
    loading, scoring, metrics = np.median(runs, axis=0)
    totals = np.sum(runs, axis=1)
    trials = sum(len(keep) for keep, _, _ in scored)
    print(f"{trials} trials of the 10 real lists ({len(voice_paths)} voices, {len(face_paths)} faces, {width}-d; "
          f"backend {backend.info['dims']} dims / {backend.info['canonical_pairs']} pairs), from evaluate's embedding "
          f"caches, median of {repeats} runs: loading them into rows + canonical coordinates {loading:.2f} s, cosine "
          f"+ backend llr of every trial {scoring:.2f} s, AUC, EER, Cllr, minCllr of both scorings {metrics:.2f} s; "
          f"total median {np.median(totals):.2f} s (min {totals.min():.2f}, max {totals.max():.2f}); "
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
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of the scoring (default: %(default)s)")
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--data", type=Path)
    parser.add_argument("--lists", default=None, help="default: DATA/protocol when it exists, else voxceleb1")
    args = parser.parse_args()
    score_real_lists(args.width, args.repeats)
    if args.checkpoint and args.data:
        lists = args.lists or (str(args.data / "protocol") if (args.data / "protocol").is_dir() else "voxceleb1")
        fit_timing(args.checkpoint, args.data, lists)


if __name__ == "__main__":
    main()
