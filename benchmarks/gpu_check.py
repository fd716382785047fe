"""One prepared check of voxface on NVIDIA GPUs, written to one JSON (``benchmarks/gpu_check.sh`` sets up and runs it).

Sections, each written to the JSON as soon as it is done (a run stopped part-way keeps what it measured):

- ``encoders``: forward (eval, inference mode) and forward+backward (train mode) throughput of the paper's encoders
  at random weights, fp32 and bf16 (autocast, as Lightning's ``bf16-mixed``), batch 64 and 256: IResNet-34 on 112 px
  faces, ECAPA-TDNN C=1024 on 2 s of 80-dim fbank, Wav2vec 2.0 base and HuBERT base on 2 s of waveform (their CNN
  feature encoders frozen, as voxface trains them); items/s and peak GPU memory;
- ``tree``: the rehearsal tree at fraction ``--fraction`` (default 0.1): a VoxCeleb1-shaped data root whose files are
  hard links to a small pool of WAVs and JPEGs of VoxCeleb1's typical lengths and sizes;
- ``extract``: ``voxface extract`` (``extract_features``) of every face with IResNet-34 and every voice (whole clips)
  with ECAPA-TDNN C=1024 on all GPUs: files/s;
- ``train``: one epoch of the paper's method (``voxceleb1/table4_ecapa_overall``: contrastive + OT + RKD, IResNet-34
  teacher frozen, ECAPA-TDNN C=1024 from scratch, batch 64 per GPU) on that tree, on one GPU and with DDP on all
  GPUs (negatives gathered from every rank, ``losses/distributed.py``): steps/s after warm-up, pairs/s, peak GPU
  memory. The frozen teacher's cache is the face store of ``extract``, reused as voxface reuses any store that holds
  the faces asked for.

Without a CUDA GPU it stops with one line (exit 2), unless ``--dry-run``: every section at toy size on the CPU (tiny
encoders, batches of 2 and 4, a tree of a few identities, DDP as two CPU processes over gloo).

    python benchmarks/gpu_check.py --out runs/gpu_check/gpu_check.json [--fraction 0.1] [--dry-run]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import traceback
import zlib
from pathlib import Path
from typing import Any

import numpy as np

TRAIN_CONFIG = "voxceleb1/table4_ecapa_overall"  # the paper's method (Table 4, ECAPA-TDNN, overall alignment)
FULL_BATCHES, TOY_BATCHES = (64, 256), (2, 4)
WARMUP_STEPS = {False: 5, True: 1}  # training steps left out of steps/s (CUDA and cuDNN start-up)
# VoxCeleb1 as released: 22,496 videos over 1,251 identities, 6.6 clips and 28 face frames per video (the lists)
VOXCELEB1_VIDEOS, CLIPS_PER_VIDEO, FRAMES_PER_VIDEO = 22_496, 6.6, 28


# ---------------------------------------------------------------- small helpers


def peak_mb(device: Any) -> float | None:
    import torch

    return round(torch.cuda.max_memory_allocated(device) / 2**20, 1) if device.type == "cuda" else None


def reset_peak(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def torch_threads_for_toys() -> None:
    """One thread per process at toy size: tiny operations on several threads spend more time waking them than
    computing (most of all where processes share few cores)."""
    import torch

    torch.set_num_threads(1)


def cpu_seconds() -> float:
    """CPU time of this process and of the processes it waited for (loader workers, DDP ranks)."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def write(result: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.tmp")
    temporary.write_text(json.dumps(result, indent=1))
    os.replace(temporary, out)


# ---------------------------------------------------------------- encoders


def encoders(toy: bool) -> dict[str, tuple[str, Any]]:
    """``{name: (input kind, builder)}``: the paper's encoders at random weights (toy: tiny ones of the same kinds)."""
    from voxface.encoders import ECAPATDNN, SSLEncoder, iresnet

    def ssl(kind: str) -> Any:
        from transformers import AutoConfig, AutoModel

        tiny = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                    conv_dim=(32,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4) if toy else {}
        config = AutoConfig.for_model(kind, layerdrop=0.0, apply_spec_augment=False, **tiny)
        return SSLEncoder(AutoModel.from_config(config), embedding_size=24 if toy else 192)

    if toy:
        return {"iresnet-toy": ("face32", lambda: iresnet(18, width=0.125, input_size=32, num_features=16)),
                "ecapa-toy": ("fbank", lambda: ECAPATDNN(channels=(32, 32, 32, 32, 96), attention_channels=16,
                                                         se_channels=16, embedding_size=24)),
                "wav2vec2-toy": ("wave", lambda: ssl("wav2vec2")), "hubert-toy": ("wave", lambda: ssl("hubert"))}
    return {"iresnet34": ("face112", lambda: iresnet(34)), "ecapa-1024": ("fbank", lambda: ECAPATDNN()),
            "wav2vec2-base": ("wave", lambda: ssl("wav2vec2")), "hubert-base": ("wave", lambda: ssl("hubert"))}


def encoder_input(kind: str, batch: int, device: Any) -> Any:
    """A random batch: faces (B, 3, S, S), 2 s of 80-dim Kaldi fbank (B, 200, 80) or 2 s of 16 kHz waveform."""
    import torch

    from voxface.media.fbank import KaldiFbank

    if kind.startswith("face"):
        size = int(kind.removeprefix("face"))
        return torch.randn(batch, 3, size, size, device=device)
    wave = torch.randn(batch, 32000, device=device) * 0.1
    return KaldiFbank().to(device)(wave)[0] if kind == "fbank" else wave


def encoder_throughput(toy: bool, device: Any, repeats: int) -> list[dict[str, Any]]:
    import torch
    from bench_encoders import timed  # benchmarks/, this script's folder, is on the path

    rows = []
    for name, (kind, build) in encoders(toy).items():
        torch.manual_seed(0)
        model = build().to(device)
        params = round(sum(p.numel() for p in model.parameters()) / 1e6, 2)
        for batch in TOY_BATCHES if toy else FULL_BATCHES:
            x = encoder_input(kind, batch, device)
            for dtype in ("fp32", "bf16"):
                autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == "bf16")

                def forward(m=model, x=x, autocast=autocast) -> None:
                    with torch.inference_mode(), autocast:
                        m(x)

                def step(m=model, x=x, autocast=autocast) -> None:
                    m.zero_grad(set_to_none=True)
                    with autocast:
                        out = m(x)
                    out.float().square().mean().backward()

                for mode, fn, train in (("forward", forward, False), ("forward+backward", step, True)):
                    model.train(train)
                    row = {"encoder": name, "input": kind, "params_m": params, "dtype": dtype, "batch": batch,
                           "mode": mode}
                    reset_peak(device)
                    try:
                        seconds = timed(fn, repeats, device)
                        row.update(ms_per_batch=round(seconds * 1000, 2), items_per_s=round(batch / seconds, 1),
                                   peak_gpu_mb=peak_mb(device))
                    except torch.OutOfMemoryError:
                        row["error"] = "out of GPU memory"
                    model.zero_grad(set_to_none=True)
                    rows.append(row)
                    print(f"encoders: {json.dumps(row)}", flush=True)
        del model
    return rows


# ---------------------------------------------------------------- the rehearsal tree


def build_tree(out: Path, fraction: float, per_split: int | None = None, seed: int = 0) -> dict[str, Any]:
    """A VoxCeleb1-shaped data root under ``out/data`` for the identities of the shipped protocol (``per_split``: only
    the first few of each split), ``fraction`` of VoxCeleb1's videos spread evenly over them, 6.6 clips and 28 face
    frames a video (toy: 3 and 2), each file a hard link to a small pool of WAVs (4 s and more, 8.2 s on average, as
    VoxCeleb1's clips) and 224 px JPEGs. Returns ``{"root", "lists", "identities", "videos", "voices", "faces",
    "seconds"}``. The rehearsal tree of ``bench_scale.py`` stands in for this one where that script is there."""
    import soundfile as sf
    from PIL import Image

    from voxface.protocol.layout import DataRoots
    from voxface.protocol.lists import SPLIT_NAMES, load_protocol

    start = time.perf_counter()
    toy = per_split is not None
    rng = np.random.default_rng(seed)
    pool = out / "pool"
    pool.mkdir(parents=True, exist_ok=True)
    lengths = [2.0, 2.5, 3.0] if toy else [4.0 - 4.2 * np.log(1 - (i + 0.5) / 24) for i in range(24)]  # mean 8.2 s
    wavs = []
    for i, seconds in enumerate(lengths):
        path = pool / f"voice_{i:02d}.wav"
        t = np.arange(int(16000 * seconds)) / 16000
        wave = 0.1 * np.sin(2 * np.pi * (120 + 10 * i) * t) + 0.02 * rng.standard_normal(len(t))
        sf.write(path, wave.astype(np.float32), 16000, subtype="PCM_16")
        wavs.append(path)
    jpgs = []
    for i in range(3 if toy else 24):
        path = pool / f"face_{i:02d}.jpg"
        size = 48 if toy else 224
        smooth = np.kron(rng.integers(0, 255, size=(size // 8, size // 8, 3)), np.ones((8, 8, 1)))
        Image.fromarray(np.clip(smooth + rng.normal(0, 8, smooth.shape), 0, 255).astype(np.uint8)).save(path,
                                                                                                      quality=90)
        jpgs.append(path)
    protocol = load_protocol("voxceleb1")
    people = [ident for split in SPLIT_NAMES for ident in protocol.identities_in_split(split)[:per_split]]
    videos = len(people) if toy else round(VOXCELEB1_VIDEOS * fraction)
    roots = DataRoots.from_root(out / "data")
    voices = faces = 0
    for v in range(videos):
        ident = people[v % len(people)]
        ytid = f"gen{v:08d}"
        clips = 3 if toy else 7 if v % 5 in (0, 1, 3) else 6  # 6.6 on average
        for c in range(1, clips + 1):
            relative = f"{ident.vox_id}/{ytid}/{c:05d}.wav"
            roots.voice(relative).parent.mkdir(parents=True, exist_ok=True)
            os.link(wavs[zlib.crc32(relative.encode()) % len(wavs)], roots.voice(relative))
        for f in range(1, (2 if toy else FRAMES_PER_VIDEO) + 1):
            relative = f"{ident.name}/1.6/{ytid}/{25 * f:07d}.jpg"
            roots.face(relative).parent.mkdir(parents=True, exist_ok=True)
            os.link(jpgs[zlib.crc32(relative.encode()) % len(jpgs)], roots.face(relative))
        voices, faces = voices + clips, faces + (2 if toy else FRAMES_PER_VIDEO)
    return {"builder": "gpu_check.build_tree", "fraction": fraction, "root": str(out / "data"), "lists": "voxceleb1",
            "identities": len(people), "videos": videos, "voices": voices, "faces": faces,
            "seconds": round(time.perf_counter() - start, 1)}


def rehearsal_tree(out: Path, fraction: float, toy: bool) -> dict[str, Any]:
    """The rehearsal tree: ``bench_scale.py``'s (``rehearsal_tree.build_rehearsal_tree``) where it is there, else
    ``build_tree``; the toy one is always ``build_tree``'s (four identities a split)."""
    if out.exists():
        import shutil

        shutil.rmtree(out)
    if not toy:
        try:
            from rehearsal_tree import build_rehearsal_tree
        except ImportError:
            pass
        else:
            return {"builder": "rehearsal_tree.build_rehearsal_tree", **build_rehearsal_tree(fraction, out)}
    return build_tree(out, fraction, per_split=4 if toy else None)


# ---------------------------------------------------------------- weights, extraction


def save_weights(folder: Path, toy: bool) -> tuple[Path, Path]:
    """Random IResNet-34 and ECAPA-TDNN C=1024 (toy: tiny) saved as their releases are: (face, voice) weights."""
    import torch

    from voxface.encoders import iresnet
    from voxface.encoders.registry import build_voice_encoder, save_release

    torch.manual_seed(0)
    face = iresnet(18, width=0.125, input_size=32, num_features=16) if toy else iresnet(34)
    voice = build_voice_encoder("ecapa", channels=[32, 32, 32, 32, 96] if toy else [1024, 1024, 1024, 1024, 3072],
                                embedding_size=24 if toy else 192)
    paths = []
    for name, encoder in (("iresnet", face), ("ecapa", voice)):
        (folder / name).mkdir(parents=True, exist_ok=True)
        paths.append(save_release(name, encoder, folder / name, trained_on="random initialisation (gpu_check)"))
    return paths[0], paths[1]


def extract_throughput(tree: dict[str, Any], face_weights: Path, voice_weights: Path, cache: Path, devices: int,
                       workers: int, device: Any, toy: bool) -> list[dict[str, Any]]:
    """Faces into the teacher-cache folder training reads (so the run reuses them), voices beside it; stores of an
    earlier check are removed first (the tree was made again)."""
    import shutil

    from voxface.features import extract_features, weights_sha256

    for folder in (cache, cache.parent / "voice_store"):
        if folder.exists():
            shutil.rmtree(folder)
    rows = []
    jobs = (("face", "iresnet", face_weights, cache / f"teacher_{weights_sha256(face_weights)[:16]}", 64),
            ("voice", "ecapa", voice_weights, cache.parent / "voice_store", 32))
    for modality, encoder, weights, out, batch in jobs:
        reset_peak(device)
        start = time.perf_counter()
        store = extract_features(encoder, weights, tree["root"], out, batch_size=batch, devices=devices,
                                 workers=workers, progress=False)
        seconds = time.perf_counter() - start
        rows.append({"modality": modality, "encoder": encoder + ("-toy" if toy else "-34" if modality == "face"
                                                                 else "-1024"),
                     "files": store.meta["count"], "unreadable": store.meta["count"] - len(store),
                     "seconds": round(seconds, 1), "files_per_s": round(store.meta["count"] / seconds, 1),
                     "devices": devices, "workers_per_device": workers, "batch_size": batch,
                     "whole_clips": modality == "voice",
                     "peak_gpu_mb": peak_mb(device) if devices == 1 else None})
        print(f"extract: {json.dumps(rows[-1])}", flush=True)
    return rows


# ---------------------------------------------------------------- one epoch of training, in its own process


def step_timer(folder: Path, warmup: int) -> Any:
    """A Lightning callback: per rank, the seconds of the training steps after ``warmup``, of validation, and the
    peak GPU memory, written to ``folder/timing-<rank>.json`` when training ends."""
    import lightning as L
    import torch

    class _StepTimer(L.Callback):
        def __init__(self) -> None:
            self.start = self.first = self.last = None
            self.steps = self.val_seconds = 0.0
            self.val_start = None

        def _now(self, module: Any) -> float:
            if module.device.type == "cuda":
                torch.cuda.synchronize(module.device)
            return time.perf_counter()

        def on_train_start(self, trainer: Any, module: Any) -> None:
            if module.device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(module.device)
            self.start = self._now(module)

        def on_train_batch_start(self, trainer: Any, module: Any, batch: Any, index: int) -> None:
            if index == warmup:
                self.first = self._now(module)

        def on_train_batch_end(self, trainer: Any, module: Any, outputs: Any, batch: Any, index: int) -> None:
            self.steps = index + 1
            if index + 1 == trainer.num_training_batches:
                self.last = self._now(module)

        def on_validation_start(self, trainer: Any, module: Any) -> None:
            self.val_start = self._now(module)

        def on_validation_end(self, trainer: Any, module: Any) -> None:
            self.val_seconds += self._now(module) - self.val_start

        def on_train_end(self, trainer: Any, module: Any) -> None:
            timed = self.steps - warmup if self.first is not None and self.last is not None else 0
            seconds = (self.last - self.first) if timed > 0 else None
            cuda = module.device.type == "cuda"
            record = {"rank": trainer.global_rank, "world": trainer.world_size, "steps": int(self.steps),
                      "timed_steps": int(timed), "timed_seconds": round(seconds, 3) if seconds else None,
                      "steps_per_s": round(timed / seconds, 3) if seconds else None,
                      "warmup_seconds": round(self.first - self.start, 2) if self.first else None,
                      "val_seconds": round(self.val_seconds, 2),
                      "peak_gpu_mb": round(torch.cuda.max_memory_allocated(module.device) / 2**20, 1) if cuda
                      else None,
                      "peak_gpu_reserved_mb": round(torch.cuda.max_memory_reserved(module.device) / 2**20, 1)
                      if cuda else None}
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"timing-{trainer.global_rank}.json").write_text(json.dumps(record))

    return _StepTimer()


def train_child(spec_file: Path) -> int:
    """What ``--train-child`` runs: each rank of a DDP run (Lightning starts the others with the same command)."""
    from voxface.training.config import load_config
    from voxface.training.run import train

    spec = json.loads(spec_file.read_text())
    if spec["toy"]:
        torch_threads_for_toys()
    train(load_config(spec["config"], spec["overrides"]), callbacks=[step_timer(Path(spec["timing"]),
                                                                                spec["warmup"])])
    return 0


def train_epoch(work: Path, tree: dict[str, Any], face_weights: Path, cache: Path, devices: int, workers: int,
                toy: bool, timeout: float | None) -> dict[str, Any]:
    """One epoch of ``TRAIN_CONFIG`` on ``devices`` devices: one here, in this process; more with DDP, in processes
    of their own (Lightning starts each rank by running the same command again)."""
    import shutil

    name = f"train_{devices}"
    out, timing = work / name, work / f"{name}_timing"
    for folder in (out, timing):
        if folder.exists():
            shutil.rmtree(folder)
    overrides = [f"data.root={tree['root']}", f"data.lists={tree['lists']}", f"face.weights={face_weights}",
                 f"face.cache_dir={cache}", f"data.workers={workers}", f"trainer.out={out}", "trainer.epochs=1",
                 f"trainer.devices={devices}", "trainer.progress=false", "trainer.checkpoint_every=1000000",
                 f"trainer.accelerator={'cpu' if toy else 'gpu'}"]
    if toy:
        overrides += ["audio.channels=[32,32,32,32,96]", "audio.embedding_size=24", "method.args.mapping_hidden=[32]",
                      "data.face_size=32", "optim.batch_size=2", "data.val_clips_per_identity=2",
                      "data.val_crop_seconds=2.0"]
    start = time.perf_counter()
    if devices == 1:
        from voxface.training.config import load_config
        from voxface.training.run import train

        run = train(load_config(TRAIN_CONFIG, overrides), callbacks=[step_timer(timing, WARMUP_STEPS[toy])])
    else:
        spec = work / f"{name}.json"
        spec.write_text(json.dumps({"config": TRAIN_CONFIG, "overrides": overrides, "timing": str(timing),
                                    "warmup": WARMUP_STEPS[toy], "toy": toy}))
        done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--train-child", str(spec)],
                              capture_output=True, text=True, timeout=timeout)
        if done.returncode:
            raise RuntimeError(f"training on {devices} devices failed (exit {done.returncode}): "
                               f"{done.stderr.strip()[-2000:]}")
        run = json.loads((out / "run.json").read_text())
    wall = time.perf_counter() - start
    ranks = [json.loads(f.read_text()) for f in sorted(timing.glob("timing-*.json"))]
    batch = 2 if toy else 64
    steps_per_s = min((r["steps_per_s"] for r in ranks if r["steps_per_s"]), default=None)
    peaks = [r["peak_gpu_mb"] for r in ranks if r["peak_gpu_mb"] is not None]
    row = {"run": "DDP" if devices > 1 else "one device", "config": TRAIN_CONFIG, "devices": devices,
           "ranks": [r["rank"] for r in ranks], "world_size": max(r["world"] for r in ranks),
           "global_batch": batch * devices, "steps": run["steps"], "steps_per_epoch": run["steps_per_epoch"],
           "steps_per_s": steps_per_s, "pairs_per_s": round(steps_per_s * batch * devices, 1) if steps_per_s else None,
           "warmup_steps": WARMUP_STEPS[toy], "warmup_seconds": max((r["warmup_seconds"] or 0) for r in ranks),
           "val_seconds": max(r["val_seconds"] for r in ranks), "run_seconds": run["seconds"],
           "wall_seconds": round(wall, 1), "peak_gpu_mb": max(peaks) if peaks else None,
           "peak_gpu_reserved_mb": max((r["peak_gpu_reserved_mb"] or 0) for r in ranks) or None,
           "loader_workers_per_device": workers, "train": run["train"]}
    print(f"train: {json.dumps(row)}", flush=True)
    return row


# ---------------------------------------------------------------- the whole check


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/gpu_check/gpu_check.json"), help="the JSON written")
    parser.add_argument("--work", type=Path, default=None, help="where the tree, stores and runs go (default: the "
                                                                "JSON's folder)")
    parser.add_argument("--fraction", type=float, default=0.1, help="of VoxCeleb1, for the rehearsal tree")
    parser.add_argument("--dry-run", action="store_true", help="every section at toy size on the CPU")
    parser.add_argument("--budget", type=float, default=420.0,
                        help="seconds from the start: a DDP run still going then is stopped (default: %(default)s; "
                             "none with --dry-run)")
    parser.add_argument("--train-child", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.train_child is not None:
        return train_child(args.train_child)
    import torch

    if not args.dry_run and not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU visible to torch "
              f"{torch.__version__} (CUDA build: {torch.version.cuda or 'no'}); run it on a machine with NVIDIA GPUs, "
              "or pass --dry-run for the toy-size run on the CPU", file=sys.stderr)
        return 2
    toy = args.dry_run
    if toy:
        torch_threads_for_toys()
    work = args.work or args.out.parent
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    device = torch.device("cpu" if toy else "cuda")
    gpus = torch.cuda.device_count() if not toy else 0
    cores = os.cpu_count() or 1
    import lightning
    import transformers

    import voxface

    result: dict[str, Any] = {
        "dry_run": toy, "gpus": gpus, "gpu": torch.cuda.get_device_name(0) if gpus else None,
        "cpu_cores": cores, "python": platform.python_version(), "torch": torch.__version__,
        "cuda": torch.version.cuda, "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "lightning": lightning.__version__, "transformers": transformers.__version__, "voxface": voxface.__version__,
        "fraction": None if toy else args.fraction, "errors": {}, "section_seconds": {}}
    write(result, args.out)
    workers = 0 if toy else max(2, min(8, cores // max(1, gpus)))

    def section(name: str, fn: Any) -> Any:
        print(f"== {name}", flush=True)
        wall, cpu = time.perf_counter(), cpu_seconds()
        try:
            result[name] = fn()
        except Exception as err:  # the next sections still run; the error is in the JSON
            traceback.print_exc()
            result["errors"][name] = f"{type(err).__name__}: {err}"
        result["section_seconds"][name] = {"wall": round(time.perf_counter() - wall, 1),
                                           "cpu": round(cpu_seconds() - cpu, 1)}
        result["seconds"] = round(time.perf_counter() - started, 1)
        write(result, args.out)
        return result.get(name)

    section("encoders", lambda: encoder_throughput(toy, device, repeats=1 if toy else 5))
    tree = section("tree", lambda: rehearsal_tree(work / "tree", args.fraction, toy))
    weights = section("weights", lambda: [str(p) for p in save_weights(work / "weights", toy)])
    cache = work / "cache"
    if tree and weights:
        face_weights, voice_weights = Path(weights[0]), Path(weights[1])
        section("extract", lambda: extract_throughput(tree, face_weights, voice_weights, cache, max(1, gpus),
                                                      workers, device, toy))
        runs = []
        section("train", lambda: runs)
        for devices in (1, 2 if toy else gpus):
            if devices < 2 and runs:
                runs.append({"run": "DDP", "skipped": "one GPU on this machine: DDP needs two or more"})
                continue
            try:
                left = None if toy else max(60.0, args.budget - (time.perf_counter() - started))
                runs.append(train_epoch(work, tree, face_weights, cache, devices, workers, toy, timeout=left))
            except Exception as err:
                traceback.print_exc()
                runs.append({"run": "DDP" if devices > 1 else "one device", "devices": devices,
                             "error": f"{type(err).__name__}: {err}"[:3000]})
                result["errors"][f"train_{devices}"] = runs[-1]["error"][:300]
            result["seconds"] = round(time.perf_counter() - started, 1)
            write(result, args.out)
    print(f"gpu_check: wrote {args.out} in {result['seconds']} s"
          + (f"; failed sections: {', '.join(result['errors'])}" if result["errors"] else ""), flush=True)
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
