"""The TUI home screen lists the workspace's runs with their state."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from textual.widgets import DataTable

from tuitrain.runs import RunDir
from tuitrain.runs.events import append_event, make_event
from tuitrain.runs.pidfile import write_pidfile
from tuitrain.tui.app import HomeScreen, TuitrainApp


async def test_home_lists_runs_with_state(cli, workspace: Path) -> None:
    assert cli("new", "fresh", "--preset", "sd15-lora").returncode == 0
    assert cli("new", "crashed", "--preset", "sdxl-lora").returncode == 0
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    crashed = RunDir(workspace / "crashed")
    write_pidfile(crashed.pidfile, dead.pid)
    append_event(crashed.events, make_event("started", total_steps=40))
    append_event(crashed.events, make_event("step", step=12, loss=0.2))

    app = TuitrainApp(workspace)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, HomeScreen)
        table = app.screen.query_one("#runs", DataTable)
        rows = {table.get_row_at(i)[0]: table.get_row_at(i) for i in range(table.row_count)}
        assert set(rows) == {"fresh", "crashed"}
        assert "never started" in str(rows["fresh"][1])
        assert "failed" in str(rows["crashed"][1]) and rows["crashed"][2] == "12/40"
        assert rows["crashed"][3] == "sdxl" and rows["crashed"][4] == "sdxl-lora"
        assert app.theme == "tuitrain-dark"
        await pilot.press("q")
    assert app.return_code == 0


async def test_home_with_no_runs_says_how_to_make_one(workspace: Path) -> None:
    app = TuitrainApp(workspace)
    async with app.run_test() as pilot:
        await pilot.pause()
        hint = app.screen.query_one("#hint")
        assert "tuitrain new" in str(hint.render())
