"""The next step is always on the home screen, read from the run's state, until it is done (issue 23: the
quick start's "what next" was a toast gone after a minute, and its step 3 sent the user out of the TUI)."""

from __future__ import annotations

from pathlib import Path

from tests.tui.conftest import HALFCELL, make_dataset, settled, wait_until
from tuitrain.demo.app import demo_hint
from tuitrain.runs import RunDir
from tuitrain.runs.create import create_run
from tuitrain.runs.events import append_event, make_event
from tuitrain.tui.app import HomeScreen, TuitrainApp


def _hint(app: TuitrainApp) -> str:
    return " ".join(str(app.screen.query_one("#hint").render()).split())


async def test_the_home_screen_says_the_next_step_until_the_run_has_done_it(workspace: Path, tmp_path: Path) -> None:
    app = TuitrainApp(workspace, image_protocol=HALFCELL)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        assert "Next: n" in _hint(app)

        create_run(workspace, "faery", "sd15-lora", str(make_dataset(tmp_path / "faery-set")))
        await pilot.press("r")
        assert "Next for faery: d: review its data" in _hint(app)

        await pilot.press("d")
        await settled(pilot, "a.bmp")
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, HomeScreen) and "o then t: train it" in _hint(app))

        run = RunDir(workspace / "faery")
        append_event(run.events, make_event("started", total_steps=3, total_epochs=1))
        append_event(run.events, make_event("finished", status="completed", reason="", step=3))
        await pilot.press("r")
        assert f"o: see its samples; the trained files are in {run.output}" in _hint(app)

        create_run(workspace, "bare", "sd15-lora")  # listed first: no data folder yet
        await pilot.press("r", "up")
        assert "Next for bare: e: give it a data folder" in _hint(app)
        await pilot.press("down")
        assert "Next for faery: o:" in _hint(app)


def test_the_demos_what_next_trains_inside_the_tui(tmp_path: Path) -> None:
    hint = demo_hint(RunDir(tmp_path / "demo"))
    assert "o opens its dashboard, t starts" in hint
    assert "--detach" not in hint.split("3 Train:")[1].split("(")[0]  # the shell command is only the alternative
