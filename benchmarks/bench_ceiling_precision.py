"""How precisely a VoxSynth draw's own test lists measure their oracle ceiling, by the number of test identities:
the evidence behind ``oracle.CEILING_WIDTH`` (no share of chance-to-ceiling on a list whose ceiling's 95% interval
is wider) and ``report.ENOUGH_TEST_IDENTITIES`` (fewer: the report's one-line caveat).

Knobs only, nothing rendered (as ``synth.build.benchmark_ceilings``): for each size, several draws with the demo's
layout (4 videos, 2 clips and 2 frames each), the oracle's AUC and 95% DeLong interval on the five unseen-unheard
and five seen-heard lists. Per size it prints the median and largest interval width over lists and draws, the
spread (standard deviation) of one list's ceiling over draws, and how many lists give a usable ceiling.

    python benchmarks/bench_ceiling_precision.py                     # sizes 48 100 200 400 1250, 5 draws (~1 min)
    python benchmarks/bench_ceiling_precision.py --identities 48 400 --draws 10 --out runs/ceilings.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from voxface.protocol import SPLIT_TEST
from voxface.synth.build import SynthConfig, build_lists, oracle_ceilings, plan
from voxface.synth.oracle import CEILING_WIDTH, Ceiling


def measure(identities: int, draws: int, test_fraction: float) -> dict:
    """Per list: the ceiling and its interval width in each draw; and the summary over lists and draws."""
    per_list: dict[str, list[tuple[float, float, bool]]] = {}
    tested = []
    for seed in range(draws):
        config = SynthConfig(identities=identities, teacher_identities=0, teacher_voices=0, seed=seed,
                             test_fraction=test_fraction)
        _, _, _, people, voice_knobs, face_knobs = plan(config)
        tested.append(sum(p.split == SPLIT_TEST for p in people))
        verification, _ = build_lists(people, seed)
        oracle = oracle_ceilings(config.model, verification, {}, voice_knobs, face_knobs)
        for key, auc in oracle["verification_auc"].items():
            low, high = oracle["verification_auc_ci95"][key]
            per_list.setdefault(key, []).append((auc, high - low, Ceiling(auc, low, high).usable))
    widths = np.array([w for rows in per_list.values() for _, w, _ in rows])
    return {"identities": identities, "test_identities": int(np.median(tested)), "draws": draws,
            "width_median": round(float(np.median(widths)), 3), "width_max": round(float(widths.max()), 3),
            "usable_share": round(float(np.mean([u for rows in per_list.values() for _, _, u in rows])), 3),
            "lists": {key: {"ceiling_mean": round(float(np.mean([a for a, _, _ in rows])), 3),
                            "ceiling_sd_over_draws": round(float(np.std([a for a, _, _ in rows], ddof=1)), 3)
                            if draws > 1 else None,
                            "width_median": round(float(np.median([w for _, w, _ in rows])), 3)}
                      for key, rows in per_list.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--identities", type=int, nargs="+", default=[48, 100, 200, 400, 1250])
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    results = []
    print(f"usable: 95% CI low > 0.5 and width <= {CEILING_WIDTH}")
    print("| identities | test identities | CI width, median | CI width, largest | lists usable | "
          "largest sd of a ceiling over draws |")
    print("|---|---|---|---|---|---|")
    for n in args.identities:
        # the tiny demo's draw holds a quarter of its identities in test, the others a fifth (demo.SIZES)
        result = measure(n, args.draws, 0.25 if n < 100 else 0.20)
        results.append(result)
        sd = max((v["ceiling_sd_over_draws"] or 0) for v in result["lists"].values())
        print(f"| {n} | {result['test_identities']} | {result['width_median']:.3f} | {result['width_max']:.3f} | "
              f"{100 * result['usable_share']:.0f}% | {sd:.3f} |", flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
