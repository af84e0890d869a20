"""The learning-rate curve of the config in the editor, drawn as text in the side panel.

It reads tuitrain.schedules, the torch-free formulas whose factors the trainer's schedulers are
tested to give step by step (tests/trainer/test_lr_schedules.py), so what the panel draws is what
the run will do. Block characters, not a plot widget: the curve is a few rows in a panel of text
that is re-rendered on every keystroke's validation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tuitrain.schedules import SCHEDULES, Schedule, warmup_steps

BLOCKS = " ▁▂▃▄▅▆▇█"  # eighths of a cell, empty to full
WIDTH = 28
ROWS = 3
NOMINAL_STEPS = 1000  # drawn over this many steps until the data scan has counted the run's


def schedule_from(get: Callable[[str], Any], total_steps: int) -> Schedule:
    """The schedule the config's [training] values describe, over `total_steps`. ValueError when they cannot."""
    name = get("training.lr_scheduler")
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}")
    fraction = float(get("training.lr_warmup_fraction") or 0.0)
    return Schedule(
        str(name), max(1, total_steps),
        warmup_steps(total_steps, int(get("training.lr_warmup_steps") or 0), fraction),
        cycles=int(get("training.lr_cycles") or 1), power=float(get("training.lr_power") or 1.0),
        min_ratio=float(get("training.lr_min_ratio") or 0.0),
    )


def curve_rows(values: list[float], rows: int = ROWS) -> list[str]:
    """Values in [0, 1] as `rows` lines of block characters, top line first (one column per value)."""
    eighths = [round(min(1.0, max(0.0, v)) * rows * 8) for v in values]
    return ["".join(BLOCKS[min(8, max(0, e - 8 * r))] for e in eighths) for r in reversed(range(rows))]


def lr_preview(get: Callable[[str], Any], total_steps: int | None) -> str:
    """The panel's text: a title, the curve over the run's steps, and where the rate starts, peaks and ends."""
    counted = bool(total_steps)
    steps = total_steps if total_steps else (get("training.max_steps") or NOMINAL_STEPS)
    try:
        schedule = schedule_from(get, int(steps))
        lr = float(get("training.learning_rate"))
    except (TypeError, ValueError):
        return "LR curve: fix the schedule settings to draw it"
    values = schedule.curve(WIDTH)
    over = f"{steps} steps" if counted or get("training.max_steps") else f"{steps} steps, nominal"
    warm = f", warm-up {schedule.warmup_steps}" if schedule.warmup_steps and schedule.name != "constant" else ""
    lines = [f"{schedule.name} over {over}{warm}", *curve_rows(values)]
    lines.append(f"{lr * values[0]:.3g} → peak {lr * max(values):.3g} → {lr * values[-1]:.3g}")
    return "\n".join(lines)
