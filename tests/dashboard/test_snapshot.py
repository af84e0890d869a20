"""Snapshots of the dashboard on a finished run with a fixed history (half-cells, UTC, fixed times).

Update after an intended change with: pytest tests/dashboard/test_snapshot.py --snapshot-update
and look at the SVGs under tests/dashboard/__snapshots__/ before committing them.
"""

from __future__ import annotations

import math
import time

import pytest
from PIL import Image
from textual.pilot import Pilot

from tests.dashboard.conftest import wait_for
from tuitrain.runs.events import encode_event, make_event
from tuitrain.runs.layout import RunDir
from tuitrain.tui.dashboard import DashboardScreen
from tuitrain.tui.dashboard.app import AttachApp
from tuitrain.tui.dashboard.widgets import LossPlot, SampleCard

T0 = 1_700_000_000.0
PROMPTS = ["a watercolour fox in the snow", "portrait of an old sailor, oil painting"]


def write_finished_run(run: RunDir) -> None:
    """200 steps on a GPU, samples every 50, a warning, a save, then done."""
    run.create_folders()
    lines = []

    def add(t: float, type_: str, **fields: object) -> None:
        lines.append(encode_event({**make_event(type_, **fields), "time": T0 + t}))

    add(0, "started", run=run.name, total_steps=200, total_epochs=4, steps_per_epoch=50, pid=1, family="sdxl",
        method="lora", device="cuda", dtype="bfloat16")
    for step in range(1, 201):
        loss = 0.08 + 0.12 * math.exp(-step / 40) + 0.03 * math.sin(step * 1.7) ** 2
        lr = 1e-4 * 0.5 * (1 + math.cos(math.pi * step / 200))
        add(step, "step", step=step, epoch=(step - 1) // 50 + 1, loss=loss, lr=lr, grad_norm=0.4 + 0.2 * math.sin(step),
            it_per_s=1.0)
        if step % 10 == 0:
            add(step, "memory", allocated=(9 + step % 30 / 10) * 2**30, reserved=14 * 2**30, peak=13.5 * 2**30,
                total=80 * 2**30)
        if step % 50 == 0:
            add(step, "epoch", epoch=step // 50, step=step)
            for index, prompt in enumerate(PROMPTS):
                path = run.samples / f"step{step:06d}-e{step // 50:04d}-p{index:02d}.png"
                picture = Image.linear_gradient("L").resize((64, 64)).convert("RGB")
                picture.paste((40 * step // 50, 90 + 60 * index, 160), (16, 16, 48, 48))
                picture.save(path)
                add(step, "sample", step=step, epoch=step // 50, path=str(path), prompt=prompt, index=index)
        if step == 120:
            add(step, "warning", message="grad norm clipped 12 times in the last 50 steps")
    add(200, "saved", step=200, epoch=4, path=str(run.output / "faery.safetensors"), final=True)
    add(200, "finished", status="completed", reason="", step=200)
    run.events.write_bytes(b"".join(lines))
    run.log.write_text("loading /models/sdxl.safetensors\nUserWarning: torch.utils.checkpoint: use_reentrant\n")


async def settled(pilot: Pilot[object]) -> None:
    app = pilot.app
    dash = next(s for s in app.screen_stack if isinstance(s, DashboardScreen))
    await wait_for(pilot, lambda: dash.status.label == "finished" and dash.up_to_date, "the replay drawn")
    await wait_for(pilot, lambda: dash.query_one(LossPlot).data is not None, "the plot")
    await wait_for(pilot, lambda: all(c.sample is not None for c in dash.query(SampleCard) if c.display)
                   and any(c.display for c in dash.query(SampleCard)), "the samples")
    await pilot.pause(0.2)


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("size", [(150, 44), (80, 24)])
def test_finished_run(snap_compare, workspace, utc, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    run = RunDir(workspace / "faery")
    write_finished_run(run)
    assert snap_compare(AttachApp(run, "halfcell"), terminal_size=size, run_before=settled)
