"""The prepared GPU check (benchmarks/gpu_check.sh) runs at toy size on the CPU, so that it cannot rot unseen."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_check.sh"


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, cwd=REPO, timeout=600,
                          env={**os.environ, "VOXFACE_PYTHON": sys.executable, **(env or {})})


def test_without_a_gpu_it_stops_with_one_line(tmp_path):
    done = _run("--out", str(tmp_path / "check.json"), env={"PATH": "/usr/bin:/bin"})  # no nvidia-smi
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and "--dry-run" in done.stderr
    python = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--out",
                             str(tmp_path / "check.json")], capture_output=True, text=True,
                            env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert python.returncode == 2 and len(python.stderr.strip().splitlines()) == 1 and "no CUDA GPU" in python.stderr
    assert not (tmp_path / "check.json").exists()


def test_the_dry_run_measures_every_section_at_toy_size(tmp_path):
    out = tmp_path / "check.json"
    done = _run("--dry-run", "--out", str(out))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["dry_run"] and result["errors"] == {}
    rows = result["encoders"]
    assert {(r["encoder"], r["dtype"], r["batch"], r["mode"]) for r in rows} == {
        (e, d, b, m) for e in ("iresnet-toy", "ecapa-toy", "wav2vec2-toy", "hubert-toy") for d in ("fp32", "bf16")
        for b in (2, 4) for m in ("forward", "forward+backward")}
    assert all(r["items_per_s"] > 0 for r in rows)
    tree = result["tree"]
    extracted = {r["modality"]: r for r in result["extract"]}
    assert extracted["face"]["files"] == tree["faces"] and extracted["voice"]["files"] == tree["voices"]
    assert all(r["unreadable"] == 0 and r["files_per_s"] > 0 for r in extracted.values())
    one, ddp = result["train"]
    assert one["run"] == "one device" and one["steps"] == one["steps_per_epoch"] > one["warmup_steps"]
    assert ddp["run"] == "DDP" and ddp["world_size"] == 2 and ddp["ranks"] == [0, 1] and ddp["global_batch"] == 4
    assert ddp["steps"] == ddp["steps_per_epoch"] == one["steps_per_epoch"] // 2  # each step: the global batch
    assert one["steps_per_s"] > 0 and ddp["steps_per_s"] > 0
    (teacher_store,) = (tmp_path / "cache").glob("teacher_*")  # training reused the extracted faces as its cache
    assert len((teacher_store / "keys.txt").read_text().splitlines()) == tree["faces"]
