"""A full-size rehearsal: VoxCeleb1's shape at ``--fraction F`` of its identities, every stage a user runs, timed.

Builds the tree (``rehearsal_tree.build_rehearsal_tree``: real identity names and listed paths, generated training
videos, every file a hard link to a small pool of rendered media), then runs each stage as its own ``voxface``
process and records its wall time and peak resident memory (the largest of the process and the processes it
waited for: loader workers, benchmark workers), with the files it handles:

1. ``protocol check --quick`` (presence only) and ``protocol check`` (every listed file decoded: files/s);
2. ``protocol manifest`` (train and val);
3. ``extract`` of faces and of voices, with the smallest encoders (random weights saved as releases: the cost
   measured is the pipeline's: decoding, batching, store writes);
4. ``benchmark --set voxceleb1`` of two methods for one epoch on those stores (training, and each run's scoring),
   batches of 64 at every fraction (the configurations' 256 distinct identities exceed fraction 0.1's 90);
5. ``evaluate`` of one of its runs from the stores on every kept trial of the ten veriflists and eight matching
   lists;

and the data loader's own throughput on one core: decode + random 2 s crop + fbank per clip (training's voice
path), decode + resize per face. Several fractions in one call also give the growth ratios (time and memory of the
largest fraction over the smallest's, against the ratio of files).

    python benchmarks/bench_scale.py --fraction 0.1 0.3 --out /scratch/rehearsal
    python benchmarks/bench_scale.py --fraction 0.1 --out /scratch/rehearsal --stages check_quick manifest

Each fraction's figures go to ``OUT/F<fraction>/scale.json`` (with ``--reuse``, added to what earlier calls recorded
there; each stage names the commit that ran it and the load average around it), all of them and the growth of the
largest fraction in OUT over the smallest to ``OUT/scale.json``; ``--keep`` keeps the trees (hard links: little
disk, many inodes), else each is deleted after its stages.
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

import numpy as np
import torch
from rehearsal_tree import build_rehearsal_tree

STAGES = ("check_quick", "check", "manifest", "extract_faces", "extract_voices", "benchmark", "evaluate", "loader")
METHODS = ("sun_su_2025", "pins")
BATCH = 64  # distinct identities per batch, at every fraction: fraction 0.1 has 90 training identities
SRC = Path(__file__).resolve().parents[1] / "src"
COMMIT = subprocess.run(["git", "-C", str(SRC), "describe", "--always", "--dirty"], capture_output=True,
                        text=True, check=False).stdout.strip() or "unknown"


def save_small_encoders(folder: Path) -> tuple[Path, Path]:
    """Near-smallest encoders of the VoxCeleb1 configurations' shapes, at random, saved as releases: an IResNet-18
    x0.0625 at 112 px with 512-d output (170 faces per CPU second, against 49 for x0.25) and an ECAPA-TDNN of 32
    channels with 192-d output (126 8-s clips per CPU second, against 28 for 128). Their forward passes still cost
    about as much as decoding: larger ones would make the rehearsal a measure of the encoders, not of the
    pipeline (the encoders' own speeds: ``bench_encoders.py``)."""
    from voxface.encoders.ecapa import ECAPATDNN
    from voxface.encoders.iresnet import iresnet

    folder.mkdir(parents=True, exist_ok=True)
    face, voice = folder / "backbone.pth", folder / "embedding_model.ckpt"
    torch.manual_seed(0)
    if not face.is_file():
        torch.save(iresnet(depth=18, width=0.0625, input_size=112, num_features=512).state_dict(), face)
    if not voice.is_file():
        torch.save(ECAPATDNN(channels=(32, 32, 32, 32, 96), embedding_size=192).state_dict(), voice)
    return face, voice


# A small launcher between this process and each stage: a child's peak RSS starts at its parent's RSS when it is
# forked (the copied page tables count), so the stage is started from a process of a few MB, which then reports
# getrusage(RUSAGE_CHILDREN): the stage's and its waited-for children's peak RSS and CPU time.
LAUNCHER = """import json, resource, subprocess, sys
code = subprocess.call(sys.argv[2:])
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
json.dump({"rc": code, "cpu": usage.ru_utime + usage.ru_stime, "maxrss_kb": usage.ru_maxrss}, open(sys.argv[1], "w"))
"""


def run_stage(argv: list[str], log: Path) -> dict:
    """Run ``python -m voxface *argv`` as a child of a small launcher; wall seconds, exit code, CPU seconds (user +
    system) and peak RSS (MB) of the stage and of the processes it waited for (``getrusage(RUSAGE_CHILDREN)`` in
    the launcher; the largest single process, not a sum). On a shared machine the CPU seconds are the steadier
    measure."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}
    usage = log.with_suffix(".usage.json")
    start = time.perf_counter()
    with log.open("w") as handle:
        subprocess.run([sys.executable, "-c", LAUNCHER, str(usage), sys.executable, "-m", "voxface", *argv],
                       stdout=handle, stderr=subprocess.STDOUT, env=env, check=False)
    seconds = time.perf_counter() - start
    used = json.loads(usage.read_text())
    return {"seconds": round(seconds, 2), "rc": used["rc"], "cpu_seconds": round(used["cpu"], 2),
            "peak_rss_mb": round(used["maxrss_kb"] / 1024, 1), "log": str(log)}


def loader_throughput(root: Path, clips: int = 200, faces: int = 400) -> dict:
    """Per core (one thread): clips/s through decode + random 2 s crop + fbank (training's voice path, fbank batched
    by 32 as the encoder's front end runs it), faces/s through decode + resize to 112 px + tensor. Timed in CPU
    seconds of this one thread, so that other work on the machine does not count."""
    from voxface.media.audio import read_voice
    from voxface.media.faces import face_to_tensor, read_face
    from voxface.media.fbank import KaldiFbank

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    wavs = sorted((root / "wav").rglob("*.wav"))
    jpgs = sorted((root / "unzippedFaces").rglob("*.jpg"))
    wavs = [wavs[i] for i in rng.choice(len(wavs), min(clips, len(wavs)), replace=False)]
    jpgs = [jpgs[i] for i in rng.choice(len(jpgs), min(faces, len(jpgs)), replace=False)]
    fbank = KaldiFbank()
    start = time.process_time()
    for first in range(0, len(wavs), 32):
        fbank(torch.stack([torch.from_numpy(read_voice(p, 2.0, rng)) for p in wavs[first:first + 32]]))
    voice_s = time.process_time() - start
    start = time.process_time()
    for path in jpgs:
        face_to_tensor(read_face(path, 112))
    face_s = time.process_time() - start
    whole = wavs[:50]
    start = time.process_time()
    for path in whole:
        read_voice(path, None)
    whole_s = time.process_time() - start
    return {"clips_per_s_per_core": round(len(wavs) / voice_s, 1), "faces_per_s_per_core": round(len(jpgs) / face_s, 1),
            "whole_clips_decoded_per_s_per_core": round(len(whole) / whole_s, 1), "clips": len(wavs),
            "faces": len(jpgs)}


def rehearse(fraction: float, out: Path, stages: tuple[str, ...], methods: tuple[str, ...], weights: tuple[Path, Path],
             keep: bool, reuse: bool = False) -> dict:
    """Build the tree of ``fraction`` in ``out`` (``reuse``: take the one kept there) and run ``stages`` on it
    (module docstring)."""
    out.mkdir(parents=True, exist_ok=True)
    saved = json.loads((out / "tree.json").read_text()) if (out / "tree.json").is_file() else None
    if reuse and saved and saved["fraction"] == fraction and Path(saved["root"]).is_dir():
        tree = saved  # a kept tree (--keep) of the same fraction, with its stores
    else:
        tree = build_rehearsal_tree(fraction, out)
    print(f"F={fraction}: tree {json.dumps(tree)}", flush=True)
    root, lists = tree["root"], tree["lists"]
    face_w, voice_w = (str(w) for w in weights)
    stores, bench, logs = out / "features", out / "benchmark", out / "logs"
    logs.mkdir(exist_ok=True)
    listed = tree["listed_voices"] + tree["listed_faces"]
    commands = {
        "check_quick": (["protocol", "check", root, "--lists", lists, "--quick"], listed),
        "check": (["protocol", "check", root, "--lists", lists], listed),
        "manifest": (["protocol", "manifest", root, "--lists", lists, "--out", str(out / "manifests")],
                     tree["voices"] + tree["faces"]),
        "extract_faces": (["extract", "--encoder", "iresnet", "--weights", face_w, "--data", root, "--out",
                           str(stores / "faces"), "--quiet"], tree["faces"]),
        "extract_voices": (["extract", "--encoder", "ecapa", "--weights", voice_w, "--data", root, "--out",
                            str(stores / "voices"), "--quiet"], tree["voices"]),
        "benchmark": (["benchmark", "--set", "voxceleb1", "--methods", ",".join(methods), "--out", str(bench),
                       "--quiet", f"data.root={root}", f"data.lists={lists}", f"face.weights={face_w}",
                       f"audio.weights={voice_w}", f"features.face={stores / 'faces'}",
                       f"features.voice={stores / 'voices'}", "trainer.epochs=1", "data.workers=2",
                       f"optim.batch_size={BATCH}"],
                      tree["voices"] + tree["faces"]),
        "evaluate": (["evaluate", "--checkpoint", str(bench / "runs" / methods[0] / "seed0" / "checkpoints" /
                                                      "best.ckpt"), "--data", root, "--lists", lists,
                      "--out", str(out / "evaluation")], listed),
    }
    results = {"fraction": fraction, "tree": tree, "stages": {}}
    if reuse and tree is saved and (out / "scale.json").is_file():  # the kept tree's earlier stages stay recorded
        earlier = json.loads((out / "scale.json").read_text())
        results["stages"], results["loader"] = earlier.get("stages", {}), earlier.get("loader")
        results = {key: value for key, value in results.items() if value is not None}
    for stage in stages:
        if stage == "loader":
            results["loader"] = loader_throughput(Path(root))
            print(f"F={fraction} loader: {json.dumps(results['loader'])}", flush=True)
            continue
        argv, files = commands[stage]
        load = os.getloadavg()[0]
        record = {**run_stage(argv, logs / f"{stage}.log"), "files": files}
        if record["rc"] == 0:
            record["files_per_s"] = round(files / record["seconds"], 1)
        else:  # its time is no measurement: no rate, no growth (``growth``), and the script exits non-zero
            print(f"bench_scale.py: F={fraction} {stage} failed (exit {record['rc']}); see {record['log']}",
                  file=sys.stderr, flush=True)
        # what ran it and how busy the machine was (1-minute load average at the start and the end)
        record.update({"commit": COMMIT, "load_avg": [round(load, 1), round(os.getloadavg()[0], 1)],
                       "finished": time.strftime("%Y-%m-%d %H:%M")})
        results["stages"][stage] = record
        print(f"F={fraction} {stage}: {json.dumps(record)}", flush=True)
        (out / "scale.json").write_text(json.dumps(results, indent=1))
    if not keep and tree is not saved:  # a reused tree (--reuse) stays where its --keep run left it
        shutil.rmtree(out / "data")
        shutil.rmtree(stores, ignore_errors=True)
    return results


def growth(small: dict, large: dict) -> dict:
    """Per stage: time and peak-memory ratios of ``large`` over ``small`` beside the ratio of files handled."""
    ratios = {}
    for stage, record in large["stages"].items():
        base = small["stages"].get(stage)
        if base and base["seconds"] > 0 and base.get("rc") == 0 and record.get("rc") == 0:
            ratios[stage] = {"time": round(record["seconds"] / base["seconds"], 2),
                             "cpu": round(record["cpu_seconds"] / max(base["cpu_seconds"], 1e-3), 2),
                             "memory": round(record["peak_rss_mb"] / base["peak_rss_mb"], 2),
                             "files": round(record["files"] / base["files"], 2)}
    return ratios


def fraction_of_voxceleb1(text: str) -> float:
    """``--fraction``'s type: a number in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= 1:  # NaN fails this too
        raise argparse.ArgumentTypeError(f"{text} is not a fraction of VoxCeleb1 in (0, 1], e.g. 0.1")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fraction", type=fraction_of_voxceleb1, nargs="+", default=[0.1],
                        help="fractions of VoxCeleb1's identities, each in (0, 1] (default 0.1)")
    parser.add_argument("--out", type=Path, required=True, help="working folder: a tree per fraction (F<fraction>/)")
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES),
                        help="stages to run, in this order (default all); evaluate needs a benchmark run, which "
                             "needs both extractions, in this call or kept by an earlier one (--keep, --reuse)")
    parser.add_argument("--methods", default=",".join(METHODS), help="the benchmark's two methods")
    parser.add_argument("--keep", action="store_true", help="keep the trees and stores")
    parser.add_argument("--reuse", action="store_true",
                        help="run the stages on the tree (and stores) a --keep run left in OUT, of the same "
                             "fraction; that tree is kept")
    args = parser.parse_args()
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {args.out} is a file; give a folder")
    from voxface.methods import METHODS as REGISTERED

    if unknown := [m for m in args.methods.split(",") if m not in REGISTERED]:
        parser.error(f"--methods: {unknown[0]!r} is no registered method; registered: {', '.join(sorted(REGISTERED))}")
    weights = save_small_encoders(args.out / "encoders")
    all_results = {"machine": {"cpus": os.cpu_count(), "load_avg_at_start": os.getloadavg()}, "fractions": {}}
    for fraction in sorted(args.fraction):
        all_results["fractions"][str(fraction)] = rehearse(fraction, args.out / f"F{fraction}", tuple(args.stages),
                                                           tuple(args.methods.split(",")), weights, args.keep,
                                                           args.reuse)
        all_results["load_avg_at_end"] = os.getloadavg()
        (args.out / "scale.json").write_text(json.dumps(all_results, indent=1))
    # the growth over every fraction measured in OUT, this call's or a kept earlier one's
    for kept in sorted(args.out.glob("F*/scale.json")):
        record = json.loads(kept.read_text())
        all_results["fractions"].setdefault(str(record["fraction"]), record)
    fractions = sorted(all_results["fractions"], key=float)
    if len(fractions) > 1:
        all_results["growth"] = growth(all_results["fractions"][fractions[0]], all_results["fractions"][fractions[-1]])
        print(f"growth {fractions[-1]} / {fractions[0]}: {json.dumps(all_results['growth'])}")
    (args.out / "scale.json").write_text(json.dumps(all_results, indent=1))
    failed = [f"F={f} {stage}" for f in fractions for stage, record in all_results["fractions"][f]["stages"].items()
              if record.get("rc") != 0]
    if failed:
        sys.exit(f"bench_scale.py: {len(failed)} stage(s) failed, not timings: {', '.join(failed)}")


if __name__ == "__main__":
    main()
