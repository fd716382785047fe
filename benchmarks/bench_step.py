"""One feature-mode training step through ``voxface train`` against a bare PyTorch loop of the same heads and loss.

On a finished demo's benchmark stores (its face store and ``<demo>/benchmark/features/voices``) and the shipped
``voxsynth/peers/<method>`` configurations, for each method:

- **train**: ``voxface.training.run.train`` in this process (what ``voxface benchmark`` calls for every run): the
  mean time of a step from the first step's start to the end of fitting, validation, checkpoints and logging
  included (``run.json``'s ``timing``), and its start-up: from the call to the first step's start;
- **bare**: the same method (heads and loss), Adam with the same groups and schedule (``build_optimizer``), over
  batches read from the same stores by the same data module beforehand (so no data work is timed), validated on the
  same trials at the same cadence (cross-modal AUC), nothing else: no logging, no checkpoints;
- **cli** (``--cli``): ``python -m voxface train`` as a user runs it, whole wall time (imports included).

Wall-clock and CPU times are both given: on a machine shared with other work the CPU time of this process is the
steadier of the two (with one torch thread it is what the wall time would be on a quiet machine). The ratio bar:
a ``train`` step within 1.5x of a ``bare`` one.

    python benchmarks/bench_step.py --demo runs/demo --out runs/bench_step
    python benchmarks/bench_step.py --demo runs/demo --out runs/bench_step --methods sun_su_2025,pins,fop --cli
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from voxface.demo_record import read_demo
from voxface.errors import ConfigError
from voxface.losses.distributed import gather_with_grad
from voxface.media.dataset import PairConfig
from voxface.protocol import load_protocol
from voxface.training.config import TrainConfig, load_config
from voxface.training.data import PairDataModule, label_space
from voxface.training.module import INPUT_KEYS, TrainingModule, build_optimizer, trial_scores, validation_auc
from voxface.training.run import train, training_manifests

METHODS = ("sun_su_2025", "pins", "fop")


def overrides(demo: Path, out: Path) -> list[str]:
    """What the demo's own benchmark runs with (``demo.json``: its data, priors, face store and sizes) and its voice
    store, a run folder under ``out``, no progress bar, no loader workers. ``SystemExit`` in one line when a store
    is missing."""
    try:
        recorded = read_demo(demo).benchmark
    except ConfigError as err:
        raise SystemExit(f"bench_step.py: {err}") from None
    stores = dict(item.split("=", 1) for item in recorded if item.startswith("features."))
    stores.setdefault("features.voice", str(demo / "benchmark" / "features" / "voices"))  # older demos' records
    for key, folder in stores.items():
        if not Path(folder).is_dir():
            raise SystemExit(f"bench_step.py: the demo's store {folder} ({key}) is missing: run 'make demo' "
                             f"(voxface demo --out {demo}) to its end first")
    voice = [] if any(item.startswith("features.voice=") for item in recorded) else [
        f"features.voice={stores['features.voice']}"]
    return [*recorded, *voice, f"trainer.out={out}", "trainer.progress=false", "data.workers=0"]


def through_train(config: TrainConfig) -> dict[str, Any]:
    """``train(config)`` into a fresh folder: its steps, per-step and start-up times, wall and CPU."""
    shutil.rmtree(config.trainer.out, ignore_errors=True)
    wall, cpu = time.perf_counter(), time.process_time()
    summary = train(config)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    timing = summary["timing"]
    return {"steps": summary["steps"], "best_val_auc": summary["best_val_auc"],
            "step_ms": 1e3 * timing["training_seconds"] / timing["steps"],
            "step_cpu_ms": 1e3 * timing["training_cpu_seconds"] / timing["steps"],
            "start_up_s": timing["start_up_seconds"], "start_up_cpu_s": timing["start_up_cpu_seconds"],
            "run_s": wall, "run_cpu_s": cpu}


def through_cli(name: str, extra: list[str], out: Path) -> dict[str, Any]:
    """``python -m voxface train`` in a fresh process: its whole wall time and what ``run.json`` says."""
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "voxface", "train", "--config", name, *extra]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    timing = json.loads((out / "run.json").read_text())["timing"]
    return {"process_s": wall, "start_up_s": timing["start_up_seconds"],
            "before_train_s": wall - timing["call_seconds"]}  # interpreter, imports, config: before train() runs


def bare_loop(config: TrainConfig) -> dict[str, Any]:
    """The method's heads and loss in a plain loop over batches prepared beforehand (see the module docstring)."""
    torch.manual_seed(config.trainer.seed)
    protocol = load_protocol(config.data.lists)
    manifests = training_manifests(config, protocol)
    labels, covariates = label_space(manifests["train"], protocol)
    method = TrainingModule(config.to_dict(), labels.to_dict()).method
    from voxface.features import StoreView, feature_stores

    stores = feature_stores(config)
    data = PairDataModule(manifests["train"], manifests["val"], PairConfig(crop_seconds=config.data.crop_seconds,
                                                                           face_size=config.data.face_size),
                          config.optim.batch_size, config.trainer.seed, 0,
                          StoreView(stores["face"], f"{config.data.faces_dir}/"), config.data.val_clips_per_identity,
                          config.data.val_crop_seconds, StoreView(stores["voice"], f"{config.data.audio_dir}/"),
                          sampler=method.sampler, batch_keys=method.batch_keys, per_identity=method.pairs_per_identity,
                          covariates=covariates)
    loader = data.train_dataloader()
    epochs, keys = [], set(INPUT_KEYS) | set(method.batch_keys)
    for epoch in range(config.trainer.epochs):
        data.sampler.set_epoch(epoch)
        epochs.append([{k: v for k, v in batch.items() if k in keys} for batch in loader])
    validation = [batch for batch in data.val_dataloader() if batch]
    optimizer, scheduler = build_optimizer(method, config, len(epochs[0]))  # the run's groups and schedule
    generator = torch.Generator().manual_seed(config.trainer.seed)
    aucs = []
    wall, cpu = time.perf_counter(), time.process_time()
    for epoch, batches in enumerate(epochs):
        method.train()
        method.start_epoch(epoch)
        for batch in batches:
            terms = method.losses(batch, gather_with_grad, generator)
            loss = sum(value for name, value in terms.items() if name.endswith("_loss"))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
        if (epoch + 1) % config.trainer.val_every == 0:
            method.eval()
            with torch.no_grad():
                scores = [trial_scores(method, batch) for batch in validation]
            aucs.append(validation_auc(scores, [batch["label"] for batch in validation]))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    steps = sum(len(b) for b in epochs)
    return {"steps": steps, "step_ms": 1e3 * wall / steps, "step_cpu_ms": 1e3 * cpu / steps,
            "best_val_auc": max(aucs) if aucs else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo", type=Path, default=Path("runs/demo"), help="a finished demo folder")
    parser.add_argument("--out", type=Path, default=Path("runs/bench_step"))
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated method names")
    parser.add_argument("--config-set", default="voxsynth", help="configs <set>/peers/<method>")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: what each run gets in voxface benchmark --jobs 2 on 2 cores)")
    parser.add_argument("--repeat", type=int, default=1, help="times each measurement is taken (the best is kept)")
    parser.add_argument("--cli", action="store_true", help="also time python -m voxface train, start to end")
    parser.add_argument("extra", nargs="*", help="key=value overrides for every run")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import logging

    logging.basicConfig(level=logging.WARNING)
    rows: dict[str, dict[str, Any]] = {}
    for method in args.methods.split(","):
        name = f"{args.config_set}/peers/{method}"
        extra = [*overrides(args.demo, args.out / method), *args.extra]
        config = load_config(name, extra)
        row: dict[str, Any] = {}
        for _ in range(args.repeat):  # the best of each: the least disturbed by other work on the machine
            for part, measured in (("train", through_train(config)), ("bare", bare_loop(config))):
                kept = row.setdefault(part, measured)
                row[part] = measured if measured["step_cpu_ms"] < kept["step_cpu_ms"] else kept
        if args.cli:
            row["cli"] = through_cli(name, [*extra, f"trainer.out={args.out / method}-cli"], args.out / f"{method}-cli")
        for unit in ("step_ms", "step_cpu_ms"):
            row[f"ratio_{unit}"] = row["train"][unit] / row["bare"][unit]
        rows[method] = row
        print(f"{method}: train {row['train']['step_ms']:.2f} ms/step ({row['train']['step_cpu_ms']:.2f} CPU), "
              f"bare {row['bare']['step_ms']:.2f} ({row['bare']['step_cpu_ms']:.2f} CPU), "
              f"start-up {row['train']['start_up_s']:.2f} s", flush=True)
    header = ("method", "steps", "train ms/step", "bare ms/step", "ratio", "CPU ratio", "start-up s", "run s",
              "cli process s")
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for method, row in rows.items():
        t, b = row["train"], row["bare"]
        cells = (method, t["steps"], f"{t['step_ms']:.2f} ({t['step_cpu_ms']:.2f} CPU)",
                 f"{b['step_ms']:.2f} ({b['step_cpu_ms']:.2f} CPU)", f"{row['ratio_step_ms']:.2f}",
                 f"{row['ratio_step_cpu_ms']:.2f}", f"{t['start_up_s']:.2f} ({t['start_up_cpu_s']:.2f} CPU)",
                 f"{t['run_s']:.2f}", f"{row['cli']['process_s']:.1f}" if "cli" in row else "-")
        print("| " + " | ".join(str(c) for c in cells) + " |")
    load = os.getloadavg()
    result = {"methods": rows, "threads": args.threads, "repeat": args.repeat,
              "machine": f"{os.cpu_count()} CPU cores, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}",
              "numpy": np.__version__, "torch": torch.__version__}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_step.json").write_text(json.dumps(result, indent=1))
    print(f"written: {args.out / 'bench_step.json'}")


if __name__ == "__main__":
    main()
