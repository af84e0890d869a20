"""The review says the next step until it is done (issue 23: the home screen had one, the review did not):
go through the images and check the set with r, then train it (a run's data) or make it a run (a folder)."""

from __future__ import annotations

from pathlib import Path

from tests.tui.conftest import HALFCELL, full_report, make_dataset, review_app, settled, wait_until
from tuitrain.runs.create import create_run
from tuitrain.tui.app import TuitrainApp
from tuitrain.tui.review.report import ReportScreen
from tuitrain.tui.review.screen import ReviewScreen


def next_line(app: TuitrainApp) -> str:
    screen = app.screen
    assert isinstance(screen, ReviewScreen)
    line = screen.query_one("#next")
    assert line.region.height == 1 and line.region.bottom < app.size.height, "the next step is not on screen"
    return " ".join(str(line.render()).split())


async def test_a_folders_review_says_check_it_then_make_it_a_run(tmp_path: Path) -> None:
    folder = make_dataset(tmp_path / "faery-set")
    app = review_app(folder)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await settled(pilot)
        assert "Next: → next · Delete culls · c captions · then r checks the whole set" in next_line(app)
        await full_report(pilot, screen)
        assert "r checks the whole set" in next_line(app)  # the check ran, but the user has not seen it
        await pilot.press("r")
        await wait_until(pilot, lambda: isinstance(app.screen, ReportScreen))
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is screen)
        assert f"Next: make it a run: tuitrain new NAME --data {folder}" in next_line(app)


async def test_a_runs_review_says_check_it_then_train_it(workspace: Path, tmp_path: Path) -> None:
    create_run(workspace, "faery", "sd15-lora", str(make_dataset(tmp_path / "faery-set")))
    app = TuitrainApp(workspace, image_protocol=HALFCELL)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        await pilot.press("d")
        screen = await settled(pilot)
        assert "then r checks the whole set" in next_line(app)
        await pilot.press("r")
        await wait_until(pilot, lambda: isinstance(app.screen, ReportScreen), timeout=30)
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is screen)
        assert "Next: esc back to the runs, then t trains faery" in next_line(app)
