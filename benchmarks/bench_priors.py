"""The demo on the shipped release priors, over training seeds: mean +- sd of every figure its bars read, plus the
RKD ablation (section 6.2.2, ``method.args.terms=[contrastive,ot]``) that the demo does not run.

Seed 0 is the demo itself (``make demo`` writes ``runs/demo``); every other seed reuses its VoxSynth data and its face
store (the teacher cache), and trains and evaluates the four runs (and the peers' benchmark, the same) again with
``trainer.seed`` = that seed; each seed's RKD-off run is trained and evaluated beside them. Writes
``<out>/priors_seeds.json`` and prints a Markdown table for BENCHMARKS.md.

    python benchmarks/bench_priors.py --demo runs/demo --seeds 0 1 2 --out runs/priors_seeds
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from voxface.demo import (
    RUNS,
    SCRATCH_RUN,
    SIZES,
    _checkpoint,
    _evaluate_step,
    _train_step,
    face_size,
    run_config,
    run_demo,
)
from voxface.protocol import load_protocol
from voxface.synth.release import release_prior, release_provenance

KEY = "random_unseenunheard"
GROUPS = ("G", "N", "A", "GNA")
NO_RKD = "no_rkd"


def demo_folder(demo: Path, out: Path, seed: int) -> Path:
    """The demo's own folder for seed 0; for another seed a folder that links the seed-0 demo's data and face store
    (training seeds do not touch them)."""
    if seed == 0:
        return demo
    folder = out / f"seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    for shared in ("voxsynth", "teacher_cache"):  # the peers' benchmark runs again: its runs record their paths
        if not (folder / shared).exists():
            (folder / shared).symlink_to((demo / shared).resolve())
    return folder


def no_rkd_run(folder: Path, seed: int) -> dict:
    """Section 6.2.2: the full method without RKD, trained and evaluated in the demo folder (its report.json)."""
    size, root = SIZES["default"], folder / "voxsynth"
    config = run_config(folder, NO_RKD, root, str(root / "protocol"), release_prior("face"), size, None,
                        seed=seed if seed else None, faces_at=face_size(release_provenance("face")),
                        extra=("method.args.terms=[contrastive,ot]",))
    _train_step(config, progress=False)
    protocol = load_protocol(root / "protocol")
    oracle = json.loads((root / "oracle.json").read_text())
    return _evaluate_step(NO_RKD, folder / "train" / NO_RKD, folder / "eval" / NO_RKD, root, protocol, oracle)


def measure(demo: Path, out: Path, seed: int) -> dict:
    folder = demo_folder(demo, out, seed)
    run_demo(folder, "default", progress=False, seed=seed if seed else None)
    reports = {name: json.loads((folder / "eval" / name / "report.json").read_text())["verification"]
               for name in (*RUNS, SCRATCH_RUN)}
    reports[NO_RKD] = no_rkd_run(folder, seed)["verification"]
    priors = json.loads((folder / "report" / "priors_reference.json").read_text())["lists"]
    full = reports["full"]
    row = {"seed": seed, "priors": priors[KEY]["auc"],
           **{f"priors {g}": priors[f"{g}_unseenunheard"]["auc"] for g in GROUPS},
           **{f"priors {g} low": priors[f"{g}_unseenunheard"]["auc_ci95"][0] for g in GROUPS},
           "full": full[KEY]["auc"], "full backend": full[KEY].get("backend", {}).get("auc"),
           **{f"full {g}": full[f"{g}_unseenunheard"]["auc"] for g in GROUPS},
           **{f"full {g} low": full[f"{g}_unseenunheard"]["auc_ci95"][0] for g in GROUPS},
           "contrastive": reports["contrastive"][KEY]["auc"], "ot_only": reports["ot_only"][KEY]["auc"],
           "ot_only ci95": reports["ot_only"][KEY]["auc_ci95"],
           "from scratch": reports[SCRATCH_RUN][KEY]["auc"],
           "from scratch G": reports[SCRATCH_RUN]["G_unseenunheard"]["auc"], "no_rkd": reports[NO_RKD][KEY]["auc"],
           "no_rkd G": reports[NO_RKD]["G_unseenunheard"]["auc"],
           "bars": json.loads((folder / "report" / "bars.json").read_text()),
           "checkpoint": str(_checkpoint(folder / "train" / "full"))}
    return row


def _mean_sd(values: list[float]) -> str:
    values = [v for v in values if v is not None]
    return f"{np.mean(values):.3f} ± {np.std(values, ddof=1) if len(values) > 1 else 0:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo", type=Path, default=Path("runs/demo"), help="the seed-0 demo folder")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("runs/priors_seeds"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = [measure(args.demo, args.out, seed) for seed in args.seeds]
    (args.out / "priors_seeds.json").write_text(json.dumps(rows, indent=1))
    columns = ["priors", "full", "full backend", "full G", "full N", "full A", "full GNA", "contrastive", "ot_only",
               "from scratch", "from scratch G", "no_rkd", "no_rkd G"]
    print("| seed | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for row in rows:
        print(f"| {row['seed']} | " + " | ".join("-" if row[c] is None else f"{row[c]:.3f}" for c in columns) + " |")
    print("| mean ± sd | " + " | ".join(_mean_sd([r[c] for r in rows]) for c in columns) + " |")
    print("constrained unseen-unheard 95% CI lows (min over seeds): "
          + ", ".join(f"priors {g} {min(r[f'priors {g} low'] for r in rows):.3f}" for g in GROUPS) + "; "
          + ", ".join(f"full {g} {min(r[f'full {g} low'] for r in rows):.3f}" for g in GROUPS))
    for row in rows:
        missed = [b["bar"] for b in row["bars"] if not b["met"]]
        print(f"seed {row['seed']}: {len(row['bars']) - len(missed)} of {len(row['bars'])} demo bars met"
              + (": not met: " + " | ".join(missed) if missed else ""))


if __name__ == "__main__":
    main()
