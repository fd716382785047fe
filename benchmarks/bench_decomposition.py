"""What the decomposition (references, probes, demographics-only reference) adds to ``voxface evaluate``.

On a demo run folder: the full run's checkpoint evaluated into fresh output folders with and without the
decomposition (each embeds the test lists' files, as a first evaluation does), then again from the caches.
The decomposition reuses the backend's cached training-identity embeddings (``--backend``), as the demo does.

    python benchmarks/bench_decomposition.py --run runs/demo
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from voxface.evaluation.evaluate import evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, default=Path("runs/demo"), help="a 'voxface demo' folder")
    args = parser.parse_args()
    checkpoint = args.run / "train" / "full" / "checkpoints" / "best.ckpt"
    backend = args.run / "train" / "full" / "backend"
    data = args.run / "voxsynth"
    seconds: dict[tuple[str, bool], float] = {}
    with tempfile.TemporaryDirectory() as folder:
        for attempt in ("first", "from caches"):
            for decomposition in (False, True):
                start = time.perf_counter()
                result = evaluate(checkpoint, data, data / "protocol", out=Path(folder) / str(decomposition),
                                  backend=backend, decomposition=decomposition)
                seconds[attempt, decomposition] = time.perf_counter() - start
                if decomposition:
                    inside = result.decomposition["seconds"]
    for attempt in ("first", "from caches"):
        without, with_ = seconds[attempt, False], seconds[attempt, True]
        print(f"evaluate, {attempt}: {without:.1f} s without the decomposition, {with_:.1f} s with it "
              f"(+{100 * (with_ - without) / without:.0f}%)")
    print(f"the decomposition itself (fits, probes, scoring; last run): {inside:.2f} s; CPU cores {os.cpu_count()}")


if __name__ == "__main__":
    main()
