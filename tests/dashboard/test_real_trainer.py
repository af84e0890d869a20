"""End to end with the real trainer on a tiny model: start from the dashboard, watch, pause, resume,
save, sample, stop, and check the files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.dashboard.conftest import wait_for, wait_until
from tests.trainer.conftest import make_dataset, tiny_model  # noqa: F401 - tiny_model is a fixture
from tuitrain.runs import RunDir, RunState, run_status
from tuitrain.runs.events import iter_events
from tuitrain.tui.dashboard import DashboardScreen
from tuitrain.tui.dashboard.app import AttachApp

pytestmark = pytest.mark.slow


def new_run(cli, name: str, model: Path, data: Path, *sets: str) -> RunDir:  # type: ignore[no-untyped-def]
    settings = ("data.resolution=64", "training.batch_size=2", "lora.rank=4", "lora.alpha=4", "training.lr_warmup_steps=0",
                "sampling.every_epochs=0", "saving.every_epochs=0", "sampling.steps=2", *sets)
    out = cli("new", name, "--preset", "sd15-lora", "--data", str(data), "--base", str(model),
              *(a for s in settings for a in ("--set", s)))
    assert out.returncode == 0, out.stderr
    return RunDir(Path(os.environ["TUITRAIN_WORKSPACE"]) / name)


async def test_train_from_the_dashboard_and_drive_it(cli, tiny_model, tmp_path: Path) -> None:  # noqa: F811
    run = new_run(cli, "live", tiny_model("sd15"), make_dataset(tmp_path / "data"), "training.epochs=500")
    app = AttachApp(run, "halfcell")
    async with app.run_test(size=(150, 44)) as pilot:
        dash = next(s for s in app.screen_stack if isinstance(s, DashboardScreen))
        await wait_for(pilot, lambda: dash.status.label == "not started", "not started")
        await pilot.press("t")
        await wait_for(pilot, lambda: dash.status.label == "starting", "starting", timeout=5)
        await wait_for(pilot, lambda: dash.status.label == "running" and dash.model.step >= 2, "steps", timeout=120)
        assert dash.model.total_steps == 2000 and dash.model.loss.last is not None

        await pilot.press("p")
        await wait_for(pilot, lambda: dash.status.label == "paused", "paused", timeout=30)
        assert run_status(run).state is RunState.PAUSED
        paused_at = dash.model.step
        await pilot.pause(0.8)
        assert dash.model.step == paused_at
        await pilot.press("p")
        await wait_for(pilot, lambda: dash.status.label == "running" and dash.model.step > paused_at, "resumed", 30)

        await pilot.press("s")
        await wait_for(pilot, lambda: dash.model.saved, "saved", timeout=30)
        await pilot.press("m")
        await wait_for(pilot, lambda: dash.model.rounds, "a sample", timeout=60)
        await pilot.press("x", "y")
        await wait_for(pilot, lambda: dash.status.label == "stopped", "stopped", timeout=60)
        await pilot.press("q")
    assert app.return_value == "quit"

    events = [e for _, e in iter_events(run.events)]
    kinds = [e["type"] for e in events]
    for kind in ("started", "paused", "resumed", "saved", "sample", "backup", "finished"):
        assert kind in kinds, kind
    assert events[-1]["status"] == "stopped"
    saves = [Path(e["path"]) for e in events if e["type"] == "saved"]
    assert len(saves) == 2 and all(p.is_file() and p.parent == run.output for p in saves)  # "save now" + on stop
    sample = next(e for e in events if e["type"] == "sample")
    assert Path(sample["path"]).is_file() and Path(sample["path"]).with_suffix(".json").is_file()
    assert list(run.checkpoints.iterdir())  # the backup taken on stop: t resumes from it
    wait_until(lambda: run_status(run).state is RunState.STOPPED, "the trainer to exit", timeout=30)
