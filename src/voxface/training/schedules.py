"""Learning-rate schedules of paper §5.2, as per-step multipliers of each parameter group's base rate.

They are functions of the step only, so ``LambdaLR`` keeps just its step count in a checkpoint and a
resumed run continues on the same curve.
"""

from __future__ import annotations

import math
from collections.abc import Callable


def step_schedule(base_lr: float, gamma: float, step_size: int, min_lr: float) -> Callable[[int], float]:
    """ECAPA-TDNN runs: multiply by ``gamma`` every ``step_size`` steps, never below ``min_lr``
    (the paper's "step learning rate between 1e-3 and 1e-8")."""
    floor = min_lr / base_lr if base_lr > 0 else 0.0
    return lambda step: max(floor, gamma ** (step // max(1, step_size)))


def tristage_schedule(total_steps: int, ratios: tuple[float, float, float], init_scale: float,
                      final_scale: float) -> Callable[[int], float]:
    """SSL runs (fairseq's tri-stage): linear warm-up from ``init_scale`` to 1 over ratios[0] of the steps,
    hold for ratios[1], exponential decay to ``final_scale`` over ratios[2], then held there
    (paper: 1e-7 -> 1e-5 -> 1e-7 with phases 15% / 1% / 7%)."""
    warm, hold, decay = (max(1, int(r * total_steps)) for r in ratios)

    def factor(step: int) -> float:
        if step < warm:
            return init_scale + (1 - init_scale) * step / warm
        step -= warm
        if step < hold:
            return 1.0
        step -= hold
        if step < decay:
            return math.exp(math.log(final_scale) * step / decay)
        return final_scale

    return factor
