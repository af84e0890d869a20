"""The compare view (issue 21): saves x prompts side by side with their eval loss, keys to move, zoom, pick.

A finished run is written here as a trainer leaves it (events, sample PNGs, saves), so the view is
tested through the real dashboard (Pilot) and in a real terminal (tmux) at 80x24 and 160x48.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from PIL import Image

from tests.dashboard.conftest import wait_for
from tests.tmux import Tmux
from tuitrain.runs.layout import RunDir
from tuitrain.tui.dashboard import DashboardScreen
from tuitrain.tui.dashboard.app import AttachApp
from tuitrain.tui.dashboard.compare import CompareCell, CompareScreen, ZoomScreen
from tuitrain.tui.dashboard.widgets import LossPlot

STEPS = (2, 4, 6)
EVALS = {2: (0.31, 0.30), 4: (0.27, 0.22), 6: (0.29, 0.15)}  # held-out, training images: step 4 is best


def finished_run(root: Path) -> RunDir:
    """Run 'r': 6 steps, samples of 2 prompts at steps 2, 4, 6, each scored and saved (6: the final)."""
    run = RunDir(root / "r")
    run.create_folders()
    run.config.write_text('[model]\nbase = "nomodel"\n')  # a run: `tuitrain attach` finds it by its config
    run.samples.mkdir(exist_ok=True)
    run.output.mkdir(exist_ok=True)
    t = time.time() - 100
    events = [{"type": "started", "run": "r", "total_steps": 6, "total_epochs": 3, "steps_per_epoch": 2, "pid": 1}]
    for step in range(1, 7):
        events.append({"type": "step", "step": step, "epoch": (step + 1) // 2, "loss": 0.5 - step * 0.03,
                       "lr": 1e-4, "grad_norm": 1.0, "it_per_s": 2.0})
        if step in STEPS:
            for index in range(2):
                path = run.samples / f"step{step:06d}-p{index:02d}.png"
                Image.new("RGB", (64, 64), (40 * step, 120 * index, 200 - 20 * step)).save(path)
                events.append({"type": "sample", "step": step, "epoch": step // 2, "path": str(path),
                               "prompt": f"prompt {index}", "index": index})
            held, train = EVALS[step]
            events.append({"type": "eval", "step": step, "epoch": step // 2, "loss": held, "train_loss": train,
                           "images": 2, "train_images": 2, "draws": 2})
            final = step == 6
            name = "r.safetensors" if final else f"r-step{step:06d}.safetensors"
            (run.output / name).write_bytes(f"weights of step {step}".encode())
            events.append({"type": "saved", "step": step, "epoch": step // 2, "path": str(run.output / name),
                           "final": final, "eval_loss": held})
    events.append({"type": "finished", "status": "completed", "reason": "", "step": 6})
    with open(run.events, "w") as fh:
        for i, event in enumerate(events):
            fh.write(json.dumps({"v": 1, "time": t + i * 0.1, **event}) + "\n")
    return run


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
async def test_compare_view_keys_zoom_pick_and_sheet(workspace: Path, size: tuple[int, int]) -> None:
    run = finished_run(workspace)
    app = AttachApp(run, "halfcell")
    async with app.run_test(size=size) as pilot:
        dash = next(s for s in app.screen_stack if isinstance(s, DashboardScreen))
        await wait_for(pilot, lambda: dash.status.label == "finished" and dash.up_to_date, "the replay")
        from tuitrain.tui.dashboard import render

        with dash.model.lock:
            progress = render.progress(dash.model, size[0])
        assert "eval 0.29 (best 0.27 at step 4)" in str(progress.renderables[1])  # the line under the bars
        plot = dash.query_one(LossPlot)
        assert plot.data is not None and plot.data.eval_x == (2.0, 4.0, 6.0)  # the second curve
        assert plot.data.eval_held == (0.31, 0.27, 0.29)

        await pilot.press("c")
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        await wait_for(pilot, lambda: len(screen.query(CompareCell)) > 0, "the grid")
        assert [r.label for r in screen.rows] == ["step 2", "step 4", "step 6"] and screen.columns == 2
        rows, columns = screen.shape
        assert rows >= 1 and columns >= 1
        if size == (160, 48):
            assert (rows, columns) == (3, 2)  # everything fits
        def labels() -> str:
            return " ".join(str(w.render()) for w in screen.query(".row-label"))

        await wait_for(pilot, lambda: "eval 0.31" in labels() and "train 0.3" in labels(), "the eval loss by its row")
        await wait_for(pilot, lambda: all(c.query_one(".picture").image is not None  # type: ignore[attr-defined]
                                          for c in screen.query(CompareCell) if c.path), "the pictures")

        await pilot.press("down", "right")
        assert (screen.row, screen.column) == (1, 1)
        cursor = [c for c in screen.query(CompareCell) if c.has_class("-cursor")]
        assert len(cursor) == 1 and cursor[0].path and cursor[0].path.endswith("step000004-p01.png")
        await pilot.press("down", "down", "down")  # stops at the last row, the window follows
        assert screen.row == 2 and screen.top <= 2 < screen.top + rows
        await pilot.press("up")

        await pilot.press("enter")
        assert isinstance(app.screen, ZoomScreen) and app.screen.path.endswith("step000004-p01.png")
        await wait_for(pilot, lambda: app.screen.query_one("#zoom-picture").image is not None, "the zoomed picture")
        await pilot.press("escape")
        assert app.screen is screen

        final = (run.output / "r.safetensors").read_bytes()
        await pilot.press("asterisk")
        await wait_for(pilot, lambda: screen.picked == 4, "the pick")
        assert (run.output / "r.safetensors").read_bytes() == b"weights of step 4"
        assert (run.output / "r-step000004.safetensors").read_bytes() == b"weights of step 4"
        assert (run.output / "r-step000006-final.safetensors").read_bytes() == final
        assert json.loads((run.output / "r.pick.json").read_text())["step"] == 4
        await wait_for(pilot, lambda: "picked" in labels(), "the pick beside its row")

        await pilot.press("w")
        await wait_for(pilot, lambda: (run.root / "contact-sheet.png").exists(), "the contact sheet")
        from tuitrain.runs.contact_sheet import CELL, GAP, LABEL

        with Image.open(run.root / "contact-sheet.png") as sheet:  # 3 rows x 2 prompts and a label column
            assert sheet.size == (LABEL + 2 * (CELL + GAP), 3 * (CELL + GAP))
        await pilot.press("escape")
        assert app.screen is dash


def test_compare_view_in_tmux(workspace: Path, tmux: Tmux) -> None:
    """The real terminal at 80x24, then 160x48: the grid's half-cell pictures, the eval loss, keys."""
    finished_run(workspace)
    for size in ((80, 24), (160, 48)):
        tmux.start_tuitrain("attach", "r", env={"TUITRAIN_IMAGE_PROTOCOL": "halfcell"}, size=size)
        tmux.wait_for("FINISHED")
        tmux.keys("c")
        screen = tmux.wait_for("compare saves", "eval 0.31", "row 1/3")
        assert "lowest eval loss at step 4" in screen or size[0] == 80  # the head is cut at 80 columns
        tmux.wait_for_picture(40)
        tmux.keys("Down")
        tmux.wait_for("row 2/3", "eval 0.27")
        tmux.keys("Enter")
        tmux.wait_for("step 4 · prompt 1")
        tmux.keys("Escape")
        tmux.wait_for("row 2/3")
        tmux.keys("Escape")
        tmux.wait_gone("compare saves")
        tmux.keys("q")
        tmux.wait_closed()


def test_model_keeps_the_eval_loss_by_step_and_forgets_what_a_resume_retrains() -> None:
    from tuitrain.tui.dashboard.model import RunModel

    model = RunModel()
    model.apply([{"type": "started", "total_steps": 6},
                 {"type": "eval", "step": 2, "loss": 0.3, "train_loss": 0.25},
                 {"type": "eval", "step": 4, "loss": 0.2, "train_loss": None},
                 {"type": "eval", "step": 5, "loss": "bad"},
                 {"type": "saved", "step": 4, "path": "/r/output/r-step000004.safetensors", "eval_loss": 0.2}])
    steps, held, train = model.eval_points()
    assert steps == [2.0, 4.0] and held == [0.3, 0.2] and train[0] == 0.25 and train[1] != train[1]  # NaN: none
    assert "eval loss 0.2" in model.log[-1].text
    model.apply([{"type": "started", "total_steps": 6, "resumed_from": 2}])  # step 4 is trained again
    assert model.eval_at(2) == (0.3, 0.25) and model.eval_at(4) is None
