"""Elapsed counts the run's training time over every attempt: a resume (after a stop, a kill, or
`--more-epochs`) adds to it instead of starting again at 0; a fresh start from step 0 starts again."""

from __future__ import annotations

from tuitrain.runs.events import make_event
from tuitrain.tui.dashboard.model import RunModel


def ev(type_: str, t: float, **fields: object) -> dict:
    return {**make_event(type_, **fields), "time": t}


def test_elapsed_adds_up_the_attempts_a_run_resumed_through() -> None:
    m = RunModel(clock=lambda: 5030.0)
    m.apply([ev("started", 1000, total_steps=30, pid=1),
             ev("step", 1040, step=10, epoch=1, loss=0.5, lr=1e-4, grad_norm=1.0),
             ev("finished", 1060, status="stopped", reason="stopped by request", step=10)])
    assert m.elapsed() == 60.0
    # resumed later; this attempt is killed: its last event is its end
    m.apply([ev("started", 2000, total_steps=30, pid=2, resumed_from=10),
             ev("step", 2025, step=15, epoch=2, loss=0.4, lr=1e-4, grad_norm=1.0)])
    m.set_alive(False)
    assert m.elapsed() == 60.0 + 25.0
    m.set_alive(True, 3)
    # Days later: the new trainer logs while it loads, before its `started`; that wait is not training time.
    m.apply([ev("log", 4990, level="info", message="resumed from backup-000010"),
             ev("started", 5000, total_steps=30, pid=3, resumed_from=10)])  # resumed from the same backup
    assert m.elapsed() == 60.0 + 25.0 + 30.0  # now (5030) - 5000, plus both earlier attempts


def test_a_fresh_start_counts_from_zero_again() -> None:
    m = RunModel(clock=lambda: 3010.0)
    m.apply([ev("started", 1000, total_steps=30, pid=1),
             ev("finished", 1100, status="failed", reason="boom", step=0),
             ev("started", 3000, total_steps=30, pid=2)])  # no backup: starts over
    assert m.elapsed() == 10.0
