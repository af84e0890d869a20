"""The report `r` opens over a run's review is `tuitrain check RUN`'s data report: the run's epochs,
accumulation and steps, not the review's defaults (issue 23: "x 1 epoch" against check's "x 4 epochs")."""

from __future__ import annotations

import json
from pathlib import Path

from tests.tui.conftest import HALFCELL, make_dataset, settled, wait_until
from tuitrain.tui.app import TuitrainApp
from tuitrain.tui.review.report import ReportScreen


async def test_the_report_of_a_run_counts_its_epochs_as_check_does(cli, workspace: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = make_dataset(tmp_path / "3_faery")
    made = cli("new", "faery", "--preset", "sd15-lora", "--data", str(data),
               "--set", "training.epochs=4", "--set", "training.gradient_accumulation=2")
    assert made.returncode == 0, made.stderr
    steps = json.loads(cli("check", "faery", "--json").stdout)["data"]["steps"]
    assert steps["epochs"] == 4 and steps["total"] == 4 * steps["per_epoch"] > 0

    app = TuitrainApp(workspace, image_protocol=HALFCELL)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("d")
        await settled(pilot)
        await pilot.press("r")
        await wait_until(pilot, lambda: isinstance(app.screen, ReportScreen))
        text = " ".join(str(app.screen.query_one("#report-text").render()).split())
    expected = (f"Steps: {steps['batches_per_epoch']} batches / accumulation 2 = {steps['per_epoch']} per epoch "
                f"x 4 epochs = {steps['total']} steps")
    assert expected in text, text
