"""How the demo's size trades time for quality: identities against the full method's share of the ceiling.

For each identity count, runs the whole demo (VoxSynth, teacher, the three runs, evaluation, reports)
with the default settings otherwise, into ``<out>/<N>``, and records the wall clock of each step and
the full method's random unseen-unheard AUC and share of the way from chance to that list's ceiling.
Writes ``<out>/size_curve.json`` and ``<out>/size_curve.png``. Folders already finished are reused.
With several ``--seeds`` it also gives the spread of the training runs (mean +- sd per size).

    python benchmarks/bench_demo_size.py --identities 200 400 800 --out runs/size_curve
    python benchmarks/bench_demo_size.py --identities 800 --seeds 0 1 2 --out runs/size_curve
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from voxface.demo import SIZES, run_demo  # noqa: E402
from voxface.synth.oracle import list_ceiling  # noqa: E402


def measure(identities: int, out: Path, seed: int) -> dict:
    default = SIZES["default"]
    size = dataclasses.replace(default, synth=dataclasses.replace(default.synth, identities=identities))
    folder = out / str(identities) if seed == 0 else out / f"{identities}_seed{seed}"
    if seed != 0:  # other training seeds reuse the seed-0 run's data and priors (measured first)
        folder.mkdir(parents=True, exist_ok=True)
        for shared in ("voxsynth", "teacher", "voice_prior"):
            if not (folder / shared).exists():
                (folder / shared).symlink_to((out / str(identities) / shared).resolve())
    result = run_demo(folder, size, progress=False, seed=seed)
    report = json.loads((folder / "eval" / "full" / "report.json").read_text())
    oracle = json.loads((folder / "voxsynth" / "oracle.json").read_text())
    key = "random_unseenunheard"
    auc, ceiling = report["verification"][key]["auc"], list_ceiling(oracle, key)
    timings = json.loads((Path(result["report"]) / "timings.json").read_text())
    share = ceiling.share(auc)  # None where the ceiling's 95% CI includes chance
    return {"identities": identities, "seed": seed, "auc": auc, "ceiling": ceiling.auc,
            "ceiling_ci95": [ceiling.low, ceiling.high], "share": None if share is None else round(share, 4),
            "seconds": timings,
            "total_seconds": round(sum(timings.values()), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--identities", type=int, nargs="+", default=[200, 400, 800])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                        help="training seeds (0: the demo's default; others reuse its data and teacher)")
    parser.add_argument("--out", type=Path, default=Path("runs/size_curve"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    points = [measure(n, args.out, seed) for n in args.identities for seed in sorted(args.seeds)]
    (args.out / "size_curve.json").write_text(json.dumps(points, indent=1))
    by_size = {n: [p for p in points if p["identities"] == n] for n in args.identities}
    figure, share_axis = plt.subplots(figsize=(5, 3.2))
    shares = {n: [p["share"] for p in ps if p["share"] is not None] for n, ps in by_size.items()}
    shown = [n for n in by_size if shares[n]]  # a size whose ceiling's CI includes chance has no share
    share_axis.errorbar(shown, [100 * np.mean(shares[n]) for n in shown],
                        yerr=[100 * np.std(shares[n]) for n in shown], fmt="o-", capsize=3)
    share_axis.set_xlabel("VoxSynth identities")
    share_axis.set_ylabel("share of chance-to-ceiling (%)")
    time_axis = share_axis.twinx()
    time_axis.plot(list(by_size), [ps[0]["total_seconds"] / 60 for ps in by_size.values()], "s--", color="grey")
    time_axis.set_ylabel("demo minutes (excl. venv)", color="grey")
    figure.tight_layout()
    figure.savefig(args.out / "size_curve.png", dpi=120)
    for p in points:
        share = "no share (the ceiling's CI includes chance)" if p["share"] is None else f"{100 * p['share']:.0f}%"
        print(f"{p['identities']:>5} identities, seed {p['seed']}: AUC {p['auc']:.3f} / ceiling {p['ceiling']:.3f} = "
              f"{share} in {p['total_seconds']:.0f} s")
    for n, ps in by_size.items():
        aucs = [p["auc"] for p in ps]
        print(f"{n:>5} identities: AUC {np.mean(aucs):.3f} +- {np.std(aucs, ddof=1) if len(aucs) > 1 else 0:.3f} "
              f"over {len(aucs)} seeds")


if __name__ == "__main__":
    main()
