"""What the decomposition (references, probes, demographics-only reference) adds to ``voxface evaluate``.

On a demo run folder: the full run's checkpoint evaluated into fresh output folders with and without the
decomposition (each embeds the test lists' files, as a first evaluation does), then again into the same folder
(every embedding from its cache).
The decomposition reuses the backend's cached training-identity embeddings (``--backend``), as the demo does.

    python benchmarks/bench_decomposition.py --run runs/demo
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from voxface.evaluation.evaluate import evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, default=Path("runs/demo"), help="a 'voxface demo' folder")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    checkpoint = args.run / "train" / "full" / "checkpoints" / "best.ckpt"
    backend = args.run / "train" / "full" / "backend"
    data = args.run / "voxsynth"
    seconds: dict[tuple[str, bool], list[float]] = {}
    inside = []
    with tempfile.TemporaryDirectory() as folder:
        for repeat in range(args.repeats):  # alternating, so that warm file caches favour neither
            for decomposition in (False, True):
                out = Path(folder) / f"{decomposition}_{repeat}"
                for attempt in ("first", "from caches"):
                    start = time.perf_counter()
                    result = evaluate(checkpoint, data, data / "protocol", out=out, backend=backend,
                                      decomposition=decomposition)
                    seconds.setdefault((attempt, decomposition), []).append(time.perf_counter() - start)
                    if decomposition:
                        inside.append(result.decomposition["seconds"])
    for attempt in ("first", "from caches"):
        without, with_ = np.median(seconds[attempt, False]), np.median(seconds[attempt, True])
        print(f"evaluate, {attempt} (median of {args.repeats}): {without:.1f} s without the decomposition, "
              f"{with_:.1f} s with it (+{with_ - without:.1f} s, +{100 * (with_ - without) / without:.0f}%)")
    print(f"the decomposition itself (fits, probes, scoring), median: {np.median(inside):.2f} s; "
          f"CPU cores {os.cpu_count()}")


if __name__ == "__main__":
    main()
