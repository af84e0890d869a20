"""t on the home screen trains the selected run (issue 23: the quick start said "o, then t"; t alone on the
home screen did nothing). It opens the run's dashboard and presses the dashboard's own t once the dashboard
has read the run, so every answer is the dashboard's: here, the refusal of a run with no data."""

from __future__ import annotations

from pathlib import Path

from tests.tui.conftest import HALFCELL, wait_until
from tuitrain.tui.app import HomeScreen, TuitrainApp
from tuitrain.tui.dashboard import DashboardScreen


async def test_t_on_the_home_screen_opens_the_dashboard_and_starts_the_trainer(cli, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    assert cli("new", "nodata", "--preset", "sd15-lora").returncode == 0
    app = TuitrainApp(workspace, image_protocol=HALFCELL)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, HomeScreen)
        await pilot.press("t")
        await wait_until(pilot, lambda: isinstance(app.screen, DashboardScreen))
        dash = app.screen
        assert isinstance(dash, DashboardScreen) and dash.run.name == "nodata"
        # The trainer was started (by the dashboard's t): it refuses a run without data, and says why.
        await wait_until(pilot, lambda: dash.status.label == "failed", timeout=60)
        assert "cannot train" in dash.status.reason
        await pilot.press("q")
