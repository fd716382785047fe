"""``voxface demo``: the main job on the built-in data, end to end as far as the toolkit goes.

Today: generate VoxSynth (default size) with its preview, show its protocol statistics, check every
file the lists name, build the leakage-free training manifest, and stream one epoch of training
pairs through the real loader (crops, fbank, faces). Rerun, it reuses what is already there.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from voxface.media import IdentityBatchSampler, KaldiFbank, PairConfig, PairDataset, SpecAugment, collate_pairs
from voxface.protocol import SPLIT_TRAIN, SPLIT_VAL, DataRoots, build_manifest, load_protocol
from voxface.protocol.check import check_files, format_check
from voxface.protocol.stats import format_stats
from voxface.synth.build import SynthConfig, generate
from voxface.synth.preview import write_preview


def run_demo(out: str | Path, identities: int = 300, batch_size: int = 32, workers: int | None = None,
             progress: bool = True) -> dict:
    from voxface.cli import format_synth_summary

    out = Path(out)
    data = out / "voxsynth"
    print(f"[1/4] VoxSynth ({identities} identities) -> {data}", flush=True)
    summary = generate(data, SynthConfig(identities=identities), workers=workers, progress=progress)
    print(format_synth_summary(data, summary))
    for path in write_preview(data):
        print(f"preview: {path}")

    print("\n[2/4] protocol statistics and file check", flush=True)
    protocol, roots = load_protocol(data / "protocol"), DataRoots.from_root(data)
    print(format_stats(protocol))
    print(format_check(check_files(protocol, roots)))

    print("\n[3/4] manifests (train minus the videos seen-heard trials use)", flush=True)
    manifests = {}
    for split, name in ((SPLIT_TRAIN, "train"), (SPLIT_VAL, "val")):
        manifests[name] = build_manifest(protocol, roots, split)
        manifests[name].save(out / f"{name}.json")
        print(f"{manifests[name].summary()} -> {out / f'{name}.json'}")

    print(f"\n[4/4] one epoch of training pairs through the loader (batch {batch_size}, fbank + SpecAugment)",
          flush=True)
    dataset = PairDataset(manifests["train"], PairConfig())
    sampler = IdentityBatchSampler(dataset.clips_per_identity, batch_size, seed=0)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_pairs, num_workers=2)
    fbank, augment = KaldiFbank(mean_norm=True), SpecAugment().train()
    pairs = skipped = 0
    start = time.perf_counter()
    for batch in loader:
        feats, _ = fbank(batch["wave"])
        augment(feats)
        pairs += len(batch["wave"])
        skipped += batch["skipped"]
    seconds = time.perf_counter() - start
    print(f"epoch: {len(sampler)} batches, {pairs} pairs ({pairs / seconds:.0f} pairs/s), feature shape "
          f"{tuple(feats.shape[1:])}, face shape {tuple(batch['face'].shape[1:])}, bad files skipped: {skipped}")
    print(f"\ndone: {out}")
    return {"synth": summary, "pairs": pairs, "skipped": skipped}
