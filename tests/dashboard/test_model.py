"""The dashboard's model: decimation that keeps spikes, run states with reasons, samples, rates."""

from __future__ import annotations

import math

from tuitrain.runs.events import make_event
from tuitrain.tui.dashboard import render
from tuitrain.tui.dashboard.model import RunModel
from tuitrain.tui.dashboard.series import Series


def ev(type_: str, t: float = 1000.0, **fields: object) -> dict:
    return {**make_event(type_, **fields), "time": t}


def test_series_stays_bounded_and_keeps_extremes() -> None:
    s = Series(capacity=512)
    for x in range(1, 100_001):
        s.add(x, 1.0 + (50.0 if x == 77_777 else 0.0) - (0.75 if x == 12_345 else 0.0))
    assert len(s.keys) <= 512 and s.width >= 128 and len(s) == 100_000
    view = s.view(80)
    assert len(view.x) <= 80 and view.x[0] == 1
    assert max(view.high) == 51.0 and min(view.low) == 0.25  # the spike and the dip survive every merge
    assert abs(sum(view.mean) / len(view.mean) - 1.0) < 0.01
    smooth = s.smoothed(80)
    assert len(smooth) == len(view.x) and all(0.5 < v < 2 for v in smooth)
    s.truncate(50_000)
    assert s.xs[-1] <= 50_000 and 49_000 < len(s) <= 50_000 + s.width


def test_smoothing_follows_a_step_change_like_a_per_point_ema() -> None:
    s = Series(capacity=64)
    for x in range(1000):
        s.add(x, 1.0 if x < 500 else 0.0)
    smooth = s.smoothed(50)
    assert smooth[0] == 1.0 and smooth[-1] < 0.01  # debiased start, settled end
    assert 0.0 < smooth[26] < 1.0  # right after the change: in between


def test_states_and_reasons() -> None:
    m = RunModel(clock=lambda: 1100.0)
    assert m.status().label == "loading"
    m.set_alive(False)
    m.replayed = True
    assert m.status().label == "not started"
    m.set_alive(True, 42)
    assert m.status().label == "starting"  # alive, nothing said yet: loading the model
    m.apply([ev("started", total_steps=100, total_epochs=10, steps_per_epoch=10, pid=42)])
    assert m.status().label == "running"
    m.apply([ev("step", t=1000 + i, step=i, epoch=1 + (i - 1) // 10, loss=1.0 / i, lr=1e-4, grad_norm=0.5) for i in range(1, 21)])
    assert m.step == 20 and m.epoch == 2 and abs(m.it_per_s - 1.0) < 1e-9
    assert m.eta() == 80.0 and m.elapsed() == 100.0
    m.apply([ev("paused", step=20)])
    assert m.status().label == "paused"
    m.apply([ev("resumed", step=20)])
    m.stop_requested = True
    assert m.status().label == "stopping"
    m.apply([ev("finished", t=1050, status="stopped", reason="stopped by request", step=20)])
    assert m.status() == type(m.status())("stopped", "stopped by request") and m.elapsed() == 50.0
    m.set_alive(True, 43)  # another trainer of this run started (another TUI, or the CLI)
    assert m.status().label == "starting"


def test_a_dead_trainer_is_failed_with_its_last_error() -> None:
    m = RunModel()
    m.replayed = True
    m.set_alive(True, 7)
    m.apply([ev("started", total_steps=10, pid=7), ev("error", message="CUDA out of memory", traceback_path="")])
    m.set_alive(False)
    status = m.status()
    assert status.label == "failed" and "ended without finishing" in status.reason and "CUDA out of memory" in status.reason
    m.apply([ev("finished", status="failed", reason="loss is nan", step=3)])
    assert m.status().label == "failed" and m.status().reason.startswith("loss is nan")


def test_resume_from_an_earlier_backup_cuts_the_curve_back() -> None:
    m = RunModel()
    m.apply([ev("started", total_steps=100)] + [ev("step", step=i, loss=1.0) for i in range(1, 38)])
    m.apply([ev("started", total_steps=100, resumed_from=30)] + [ev("step", step=i, loss=0.5) for i in range(31, 41)])
    assert len(m.loss) == 40 and m.loss.view(100).mean[-1] == 0.5


def test_samples_group_into_rounds_one_per_prompt() -> None:
    m = RunModel()
    m.apply([ev("sample", step=10, epoch=1, path=f"/s/10-{i}.png", prompt=f"p{i}", index=i) for i in range(3)])
    m.apply([ev("sample", step=20, epoch=2, path=f"/s/20-{i}.png", prompt=f"p{i}", index=i) for i in range(3)])
    m.apply([ev("sample", step=20, epoch=2, path="/s/20-again.png", prompt="p0", index=0)])  # sample now, same step
    assert [(r.step, len(r.samples)) for r in m.rounds] == [(10, 3), (20, 3), (20, 1)]
    assert [s.prompt for s in m.rounds[1].ordered()] == ["p0", "p1", "p2"]


def test_memory_and_log_entries() -> None:
    m = RunModel()
    m.apply([ev("memory", allocated=3 * 2**30, reserved=4 * 2**30, peak=5 * 2**30, total=80 * 2**30),
             ev("warning", message="careful"), ev("log", level="info", message="hello")])
    m.add_trainer_lines(["Traceback (most recent call last):"])
    assert [e.level for e in m.log] == ["warning", "info", "trainer"]
    assert m.mem.last == 3 * 2**30
    assert render.size(3 * 2**30) == "3.0 GiB" and render.duration(3725) == "1:02:05"
    assert render.sparkline([1, 2, 3, 4], 10) == "▁▃▆█" and render.number(math.nan) == "–"
    styled = render.log_line(m.log[0])
    assert styled.plain.startswith(("0", "1", "2")) and "warning: careful" in styled.plain
    assert render.log_line(m.log[2]).style == render.DEFAULT_PALETTE["error"]


def test_the_stats_panel_shows_every_processs_memory() -> None:
    """A run of several processes (distributed.processes) reports each rank's memory; the panel lists them."""
    from rich.console import Console

    m = RunModel(clock=lambda: 1100.0)
    gib = 2**30
    ranks = [{"allocated": 10 * gib, "reserved": 12 * gib, "peak": 11 * gib, "total": 80 * gib},
             {"allocated": 10 * gib, "reserved": 12 * gib, "peak": 13 * gib, "total": 80 * gib}]
    m.apply([ev("memory", **ranks[0], ranks=ranks)])
    console = Console(width=100, record=True)
    console.print(render.stats(m, 100))
    text = console.export_text()
    assert "2 procs" in text and "0:11.0 GiB" in text and "1:13.0 GiB" in text
    m.apply([ev("memory", **ranks[0])])  # one process: no per-process row
    console = Console(width=100, record=True)
    console.print(render.stats(m, 100))
    assert "procs" not in console.export_text()
