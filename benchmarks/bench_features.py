"""Feature extraction throughput (``voxface extract``) on VoxSynth's demo size.

Faces through an IResNet of the demo teacher's size (both views), voices through an ECAPA of the demo's size (whole
clips, length-sorted batches), each into a feature store; then the same call again (a finished store reused) and
the read of every row back. The encoders are random, saved the way releases are: the time does not depend on what
they learnt.

    python benchmarks/bench_features.py --out runs/bench_features             # generates VoxSynth's default size
    python benchmarks/bench_features.py --data runs/demo/voxsynth --out runs/bench_features
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import torch

from voxface.encoders.ecapa import ECAPATDNN
from voxface.encoders.iresnet import iresnet
from voxface.features import FeatureStore, extract_features


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="a VoxSynth root (default: generate one in --out)")
    parser.add_argument("--out", type=Path, default=Path("runs/bench_features"))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    data = args.data
    if data is None:
        from voxface.synth.build import SynthConfig, generate

        data = args.out / "voxsynth"
        generate(data, SynthConfig(), workers=args.threads, progress=False)
    torch.manual_seed(0)
    face_weights, voice_weights = args.out / "backbone.pth", args.out / "embedding_model.ckpt"
    # The demo's sizes (demo.py SIZES["default"], configs/voxsynth/base.yaml).
    torch.save(iresnet(depth=18, width=0.25, input_size=64, num_features=128).state_dict(), face_weights)
    torch.save(ECAPATDNN(channels=(128, 128, 128, 128, 384), embedding_size=64).state_dict(), voice_weights)
    results = {"threads": args.threads, "batch_size": args.batch_size, "device": "cuda" if torch.cuda.is_available()
               else "cpu"}
    for name, weights, modality in (("iresnet", face_weights, "face"), ("ecapa", voice_weights, "voice")):
        out = args.out / f"{modality}s"
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        store = extract_features(name, weights, data, out, batch_size=args.batch_size, progress=False)
        seconds = time.perf_counter() - start
        start = time.perf_counter()
        extract_features(name, weights, data, out, batch_size=args.batch_size, progress=False)
        reuse = time.perf_counter() - start
        start = time.perf_counter()
        FeatureStore.open(out).vectors(store.keys, view=0).sum()
        read = time.perf_counter() - start
        results[modality] = {"files": len(store.keys), "seconds": round(seconds, 2),
                             "files_per_s": round(len(store.keys) / seconds, 1), "reuse_s": round(reuse, 3),
                             "read_all_s": round(read, 3), "store_mb": round(sum(
                                 f.stat().st_size for f in out.iterdir()) / 2**20, 2)}
        print(json.dumps({modality: results[modality]}), flush=True)
    (args.out / "bench_features.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
