"""The dashboard shows the effective batch the trainer started with and each GPU's utilisation beside its
memory (issue 19), from the events alone: no GPU, no trainer."""

from __future__ import annotations

from rich.console import Console

from tuitrain.runs.events import make_event
from tuitrain.tui.dashboard import render
from tuitrain.tui.dashboard.model import RunModel

GIB = 2**30


def ev(type_: str, **fields: object) -> dict:
    return {**make_event(type_, **fields), "time": 1000.0}


def stats_text(model: RunModel, width: int = 100) -> str:
    console = Console(width=width, record=True)
    console.print(render.stats(model, width))
    return console.export_text()


def gpu(peak: int, utilization: int | None = None) -> dict:
    mine = {"allocated": 10 * GIB, "reserved": 12 * GIB, "peak": peak * GIB, "total": 80 * GIB}
    return mine if utilization is None else {**mine, "utilization": utilization}


def test_the_effective_batch_the_trainer_started_with() -> None:
    m = RunModel(clock=lambda: 1100.0)
    m.apply([ev("started", total_steps=10, pid=7, batch_size=4, gradient_accumulation=2, processes=2,
                effective_batch=16)])
    assert m.effective_batch == (4, 2, 2, 16)
    assert "batch      16        4 x 2 accum x 2 procs" in stats_text(m)

    m.apply([ev("started", total_steps=10, pid=8, batch_size=3, gradient_accumulation=1, processes=1,
                effective_batch=3)])
    assert "batch      3         images per step" in stats_text(m)

    m.apply([ev("started", total_steps=10, pid=9)])  # a trainer from before issue 19 said nothing
    assert m.effective_batch is None and "batch" not in stats_text(m)
    m.apply([ev("started", total_steps=10, pid=9, batch_size="4", gradient_accumulation=1, processes=1,
                effective_batch=4)])
    assert m.effective_batch is None


def test_each_gpus_utilisation_beside_its_memory() -> None:
    m = RunModel(clock=lambda: 1100.0)
    m.apply([ev("memory", **gpu(11, 93), ranks=[gpu(11, 93), gpu(13, 71)])])
    assert m.utilization == [93, 71]
    text = stats_text(m)
    assert "2 procs    peak util 0:11.0 GiB 93%  1:13.0 GiB 71%" in text
    assert "GPU util" not in text  # several processes: per rank, in that row

    m.apply([ev("memory", **gpu(11, 87))])  # one process
    assert m.utilization == [87]
    assert "GPU util   87 %" in stats_text(m)

    # No nvidia-ml-py on the trainer's side (the field is left out), a CPU run, or nonsense: nothing shown.
    m.apply([ev("memory", **gpu(11), ranks=[gpu(11), gpu(13)])])
    assert m.utilization is None
    text = stats_text(m)
    assert "util" not in text and "0:11.0 GiB  1:13.0 GiB" in text
    m.apply([ev("memory", rss=3 * GIB)])
    assert m.utilization is None and "util" not in stats_text(m)
    m.apply([ev("memory", **gpu(11, 150), ranks=[gpu(11, 150), {**gpu(13), "utilization": "x"}])])
    assert m.utilization is None

    m.apply([ev("memory", **gpu(11), ranks=[gpu(11), gpu(13, 40)])])  # one rank could not tell
    assert m.utilization == [None, 40]
    assert "0:11.0 GiB  1:13.0 GiB 40%" in stats_text(m)
