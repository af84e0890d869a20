"""t on a finished run asks: more epochs from its final state, or a new run from its config; never step 0 again."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from textual.widgets import Input

from tests.dashboard.conftest import wait_for, wait_until
from tests.dashboard.test_real_trainer import new_run
from tests.trainer.conftest import make_dataset, tiny_model  # noqa: F401 - tiny_model is a fixture
from tuitrain.runs import RunDir, RunState, run_status
from tuitrain.runs.events import iter_events
from tuitrain.tui.dashboard import DashboardScreen
from tuitrain.tui.dashboard.app import AttachApp
from tuitrain.tui.dashboard.dialogs import FinishedChoice

pytestmark = pytest.mark.slow


def _steps(run: RunDir) -> list[int]:
    return [e["step"] for _, e in iter_events(run.events) if e["type"] == "step"]


@pytest.fixture
def finished(cli, tiny_model, tmp_path: Path) -> RunDir:  # noqa: F811
    run = new_run(cli, "done", tiny_model("sd15"), make_dataset(tmp_path / "data"), "training.epochs=1")
    out = subprocess.run([sys.executable, "-m", "tuitrain", "train", run.name], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert _steps(run) == [1, 2, 3, 4]
    return run


async def test_t_on_a_finished_run_continues_it_for_more_epochs(finished: RunDir) -> None:
    final = (finished.output / "done.safetensors").read_bytes()
    app = AttachApp(finished, "halfcell")
    async with app.run_test(size=(150, 44)) as pilot:
        dash = next(s for s in app.screen_stack if isinstance(s, DashboardScreen))
        await wait_for(pilot, lambda: dash.status.label == "finished", "finished")
        assert "t: more epochs" in dash.status.reason
        await pilot.press("t")
        assert isinstance(app.screen, FinishedChoice)
        await pilot.press("escape")  # asked, and declined: nothing starts
        assert app.screen is dash
        await pilot.pause(0.5)
        assert run_status(finished).state is RunState.FINISHED and _steps(finished) == [1, 2, 3, 4]

        await pilot.press("t")
        epochs = app.screen.query_one("#more-epochs", Input)
        assert epochs.has_focus and epochs.value == "1"
        await pilot.press("backspace", "2", "enter")
        await wait_for(pilot, lambda: dash.status.label == "finished" and dash.model.step == 12, "12 steps", 300)
        await pilot.press("q")
    assert _steps(finished) == list(range(1, 13))
    assert (finished.output / "done-step000004-final.safetensors").read_bytes() == final  # the first final, kept


async def test_t_on_a_finished_run_can_start_a_new_run_from_its_config(finished: RunDir) -> None:
    log = finished.events.read_bytes()
    app = AttachApp(finished, "halfcell")
    async with app.run_test(size=(150, 44)) as pilot:
        dash = next(s for s in app.screen_stack if isinstance(s, DashboardScreen))
        await wait_for(pilot, lambda: dash.status.label == "finished", "finished")
        await pilot.press("t")
        assert app.screen.query_one("#new-name", Input).value == "done-2"
        await pilot.press("tab", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen is not dash,
                       "the new run's dashboard", 60)
        new = app.screen
        assert new.run.name == "done-2"
        await wait_for(pilot, lambda: new.status.label == "finished", "the new run to finish", 300)
        await pilot.press("q")
    assert app.return_value == "quit"
    fork = RunDir(finished.root.parent / "done-2")
    assert _steps(fork) == [1, 2, 3, 4] and (fork.output / "done-2.safetensors").is_file()
    assert finished.events.read_bytes() == log
    wait_until(lambda: run_status(fork).state is RunState.FINISHED, "the new trainer to exit", timeout=30)
