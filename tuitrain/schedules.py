"""Learning-rate schedules as plain formulas: the factor the learning rate is multiplied by at a step.

Torch-free, so the config editor can draw a run's LR curve without the trainer. The trainer
steps with the libraries' own schedulers where they exist (diffusers.optimization for the
classic ones and polynomial, transformers for cosine with a minimum LR) and with these
formulas for REX, which neither library has; tests/trainer/test_lr_schedules.py checks at
every step that the libraries' schedulers give what these formulas say.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SCHEDULES = (
    "constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts", "cosine_with_min_lr",
    "polynomial", "rex",
)


@dataclass(frozen=True)
class Schedule:
    """One run's schedule: training.lr_scheduler and its settings, with the warm-up resolved to steps."""

    name: str
    total_steps: int
    warmup_steps: int = 0
    cycles: int = 1  # cosine_with_restarts
    power: float = 1.0  # polynomial
    min_ratio: float = 0.0  # cosine_with_min_lr, polynomial, rex: the last LR as a fraction of the first

    def factor(self, step: int) -> float:
        """The multiplier of the learning rate for optimizer step `step` (0-based: the first step's is factor(0))."""
        return lr_factor(self, step)

    def curve(self, points: int) -> list[float]:
        """`points` factors spread evenly over the run, first step to last."""
        last = max(self.total_steps - 1, 0)
        if points <= 1:
            return [self.factor(0)]
        return [self.factor(round(i * last / (points - 1))) for i in range(points)]


def warmup_steps(total_steps: int, steps: int, fraction: float) -> int:
    """training.lr_warmup_steps, or training.lr_warmup_fraction of the run when that is set (> 0)."""
    if fraction > 0:
        return int(round(fraction * total_steps))
    return steps


def lr_factor(s: Schedule, step: int) -> float:
    """The formulas of diffusers.optimization / transformers.optimization, and REX (Chen et al. 2021)."""
    total, warm = max(1, s.total_steps), s.warmup_steps
    if s.name == "constant":
        return 1.0
    if step < warm:
        if s.name == "polynomial":
            return step / max(1, warm)  # diffusers: float(step) / float(max(1, warmup))
        return step / max(1.0, warm)
    if s.name == "constant_with_warmup":
        return 1.0
    if s.name == "linear":
        return max(0.0, (total - step) / max(1, total - warm))
    progress = (step - warm) / max(1, total - warm)
    if s.name == "cosine":
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * progress)))
    if s.name == "cosine_with_restarts":
        if progress >= 1.0:
            return 0.0
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * ((float(s.cycles) * progress) % 1.0))))
    if s.name == "cosine_with_min_lr":
        factor = 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * progress))
        return factor * (1.0 - s.min_ratio) + s.min_ratio
    if s.name == "polynomial":
        # diffusers' get_polynomial_decay_schedule_with_warmup with lr_end = min_ratio * lr: relative to lr,
        # (1 - end) * (1 - progress) ** power + end, and end once the run is over.
        if step > total:
            return s.min_ratio
        remaining = 1 - (step - warm) / (total - warm) if total > warm else 0.0
        return (1.0 - s.min_ratio) * remaining**s.power + s.min_ratio
    if s.name == "rex":
        # REX, "Revisiting Budgeted Training with an Improved Schedule" (Chen, Wolfe, Kyrillidis 2021):
        # (1 - z) / (1/2 + (1 - z) / 2) for progress z; stays high longer than linear, then falls to 0.
        z = min(1.0, progress)
        return s.min_ratio + (1.0 - s.min_ratio) * (1.0 - z) / (0.5 + 0.5 * (1.0 - z))
    raise ValueError(f"training.lr_scheduler: unknown schedule {s.name!r}")
