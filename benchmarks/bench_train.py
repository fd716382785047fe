"""Training throughput (pairs/s) and where the time goes: data loading, encoders, losses, backward/step.

Runs the real training pieces (PairDataset with the teacher-embedding cache, IdentityBatchSampler,
the configured method with its encoders, Adam) in a plain loop so each part can be timed; Lightning adds little.

    python benchmarks/bench_train.py --data runs/demo/voxsynth --teacher runs/demo/teacher/backbone.pth
    python benchmarks/bench_train.py ... --size full      # ECAPA C=1024 (the paper's), 192-d
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from voxface.media import IdentityBatchSampler, PairConfig, PairDataset, collate_pairs
from voxface.protocol import DataRoots, build_manifest, load_protocol
from voxface.training.config import load_config
from voxface.training.module import TrainingModule
from voxface.training.teacher_cache import build_teacher_cache

SIZES = {"cpu": ["audio.channels=[256,256,256,256,768]", "audio.embedding_size=128",
                 "method.args.mapping_hidden=[256]"],
         "full": ["audio.channels=[1024,1024,1024,1024,3072]", "audio.embedding_size=192",
                  "method.args.mapping_hidden=[512]"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="VoxCeleb1-layout root (e.g. VoxSynth)")
    parser.add_argument("--lists", default=None, help="protocol source (default: DATA/protocol)")
    parser.add_argument("--teacher", type=Path, required=True, help="face teacher backbone.pth")
    parser.add_argument("--size", choices=sorted(SIZES), default="cpu")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    lists = args.lists or str(args.data / "protocol")
    from voxface.encoders import load_insightface_backbone

    face_size = load_insightface_backbone(args.teacher).input_size
    config = load_config(None, [f"data.root={args.data}", f"data.lists={lists}", f"face.weights={args.teacher}",
                                f"data.face_size={face_size}", f"optim.batch_size={args.batch}", *SIZES[args.size]])
    module = TrainingModule(config.to_dict()).to(device).train()
    method = module.method
    roots = DataRoots.from_root(args.data)
    manifest = build_manifest(load_protocol(lists), roots)
    faces = [f for i in manifest.identities for f in i.faces]
    cache = build_teacher_cache(method.face_encoder, args.teacher, roots, faces, Path("runs/bench_cache"),
                                progress=False)
    dataset = PairDataset(manifest, PairConfig(face_size=face_size), teacher_cache=cache)
    sampler = IdentityBatchSampler(dataset.clips_per_identity, args.batch)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_pairs,
                                         num_workers=args.workers, persistent_workers=args.workers > 0)
    optimizer = torch.optim.Adam([p for p in module.parameters() if p.requires_grad], lr=1e-4, weight_decay=2e-5)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    parts = {"data": 0.0, "encoders": 0.0, "heads+losses": 0.0, "backward+step": 0.0}
    iterator = iter(loader)
    next(iterator)  # worker start-up is not throughput
    for _ in range(args.steps):
        t0 = time.perf_counter()
        batch = next(iterator)
        batch = {key: value.to(device) if torch.is_tensor(value) else value for key, value in batch.items()}
        sync()
        t1 = time.perf_counter()
        encoded = {"face_features": method.face_input(batch), "voice_features": method.voice_input(batch),
                   "identity": batch["identity"]}
        sync()
        t2 = time.perf_counter()
        terms = method.losses(encoded, gather=lambda x: x)  # the heads and the method's loss terms
        loss = sum(value for name, value in terms.items() if name.endswith("_loss"))
        sync()
        t3 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        sync()
        t4 = time.perf_counter()
        for name, seconds in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            parts[name] += seconds
    total = sum(parts.values())
    where = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {os.cpu_count()} cores"
    print(f"{args.size} config (ECAPA {config.audio.channels[0]} ch), batch {args.batch}, {where}: "
          f"{args.batch * args.steps / total:.1f} pairs/s; " +
          ", ".join(f"{name} {100 * seconds / total:.0f}%" for name, seconds in parts.items()))


if __name__ == "__main__":
    main()
