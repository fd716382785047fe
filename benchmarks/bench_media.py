"""Media pipeline throughput on CPU.

1. Loader: pairs/s through PairDataset + DataLoader (decode, random 2 s crop, resample, face decode,
   resize, flip) plus the batched fbank, for 0, 1 and 2 workers.
2. Fbank: our batched torch fbank against kaldi-native-fbank, one clip at a time, on the same clips.

    python benchmarks/bench_media.py                        # on a generated VoxCeleb1-layout tree
    python benchmarks/bench_media.py --data ROOT --lists voxceleb1 --batches 20
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from voxface.media import IdentityBatchSampler, KaldiFbank, PairConfig, PairDataset, collate_pairs
from voxface.protocol import DataRoots, build_manifest, load_protocol
from voxface.testing import make_tiny_voxceleb


def bench_loader(dataset: PairDataset, batch_size: int, batches: int, workers: int) -> float:
    sampler = IdentityBatchSampler(dataset.clips_per_identity, batch_size, seed=0)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_pairs,
                                         num_workers=workers, persistent_workers=False)
    fbank = KaldiFbank()
    pairs, start = 0, None
    for step, batch in enumerate(loader):
        fbank(batch["wave"])
        if step == 0:  # do not count worker start-up
            start = time.perf_counter()
            continue
        pairs += len(batch["wave"])
        if step == batches:
            break
    return pairs / (time.perf_counter() - start)


def bench_fbank(waves: np.ndarray) -> tuple[float, float]:
    import kaldi_native_fbank as knf

    fbank = KaldiFbank()
    batch = torch.from_numpy(waves)
    fbank(batch)
    start = time.perf_counter()
    for _ in range(5):
        fbank(batch)
    ours = (time.perf_counter() - start) / 5
    opts = knf.FbankOptions()
    opts.frame_opts.dither = 0.0
    opts.mel_opts.num_bins = 80
    start = time.perf_counter()
    for wave in waves:
        online = knf.OnlineFbank(opts)
        online.accept_waveform(16000, (wave * 32768).tolist())
        online.input_finished()
        np.stack([online.get_frame(i) for i in range(online.num_frames_ready)])
    return ours, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="a VoxCeleb1-layout root (default: generate one)")
    parser.add_argument("--lists", default=None, help="protocol source for --data (default: voxceleb1)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    with tempfile.TemporaryDirectory() as tmp:
        if args.data is None:
            tree = make_tiny_voxceleb(tmp, train=args.batch_size + 8, val=1, test=2, videos=3, clips=4,
                                      frames=3, corrupt=False, face_size=224)
            protocol, roots, label = load_protocol(tree.protocol_dir), tree.roots, "generated tree"
        else:
            protocol, roots, label = load_protocol(args.lists or "voxceleb1"), DataRoots.from_root(args.data), args.data
        manifest = build_manifest(protocol, roots)
        dataset = PairDataset(manifest, PairConfig())
        print(f"data: {label}; {manifest.summary()}; CPU cores: {os.cpu_count()}; torch threads: "
              f"{torch.get_num_threads()}")
        for workers in args.workers:
            rate = bench_loader(dataset, args.batch_size, args.batches, workers)
            print(f"loader, {workers} workers: {rate:8.1f} pairs/s  (decode + crop + resample + face + fbank)")
        rng = np.random.default_rng(0)
        waves = np.stack([dataset[(i % len(dataset.voices), 0, int(rng.integers(1 << 30)))]["wave"].numpy()
                          for i in range(64)])
        ours, kaldi = bench_fbank(waves)
        print(f"fbank, 64 clips x 2 s: ours (one batched call) {ours * 1000:.1f} ms; "
              f"kaldi-native-fbank (per clip) {kaldi * 1000:.1f} ms; speed-up {kaldi / ours:.1f}x")


if __name__ == "__main__":
    main()
