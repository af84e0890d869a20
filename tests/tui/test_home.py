"""The home screen: runs with their state, and its actions (new run, review, config editor, dashboard)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from textual.widgets import DataTable, Input, Select, Static

from tests.tui.conftest import HALFCELL, make_dataset, notifications, settled, wait_until
from tuitrain.config import load_config
from tuitrain.runs import RunDir
from tuitrain.runs.events import append_event, make_event
from tuitrain.runs.pidfile import write_pidfile
from tuitrain.tui.app import HomeScreen, TuitrainApp
from tuitrain.tui.new_run import NewRunScreen
from tuitrain.tui.review.screen import ReviewScreen


def rows(app: TuitrainApp) -> dict[str, list[object]]:
    table = app.screen.query_one("#runs", DataTable)
    return {str(table.get_row_at(i)[0]): table.get_row_at(i) for i in range(table.row_count)}


async def test_home_lists_runs_with_state(cli, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    assert cli("new", "fresh", "--preset", "sd15-lora").returncode == 0
    assert cli("new", "crashed", "--preset", "sdxl-lora").returncode == 0
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    crashed = RunDir(workspace / "crashed")
    write_pidfile(crashed.pidfile, dead.pid)
    append_event(crashed.events, make_event("started", total_steps=40))
    append_event(crashed.events, make_event("step", step=12, loss=0.2))

    app = TuitrainApp(workspace, image_protocol=HALFCELL)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, HomeScreen)
        found = rows(app)
        assert set(found) == {"fresh", "crashed"}
        assert "never started" in str(found["fresh"][1])
        assert "failed" in str(found["crashed"][1]) and found["crashed"][2] == "12/40"  # never a stale "running"
        assert found["crashed"][3] == "sdxl" and found["crashed"][4] == "sdxl-lora"
        assert app.theme == "tuitrain-dark"
        await pilot.press("q")
    assert app.return_code == 0


async def test_home_with_no_runs_says_how_to_make_one(workspace: Path) -> None:
    app = TuitrainApp(workspace, image_protocol=HALFCELL)
    async with app.run_test() as pilot:
        await pilot.pause()
        hint = app.screen.query_one("#hint")
        assert "tuitrain new" in str(hint.render()) and "Next: n" in str(hint.render())


async def test_n_creates_a_run_like_tuitrain_new(workspace: Path, tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "10_faery")
    app = TuitrainApp(workspace, image_protocol=HALFCELL)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await pilot.press("n")
        assert isinstance(app.screen, NewRunScreen)
        app.screen.query_one("#new-name", Input).value = "bad name!"
        await pilot.press("enter")
        assert "not a usable run name" in str(app.screen.query_one("#new-error").render())
        app.screen.query_one("#new-name", Input).value = "faery"
        app.screen.query_one("#new-preset", Select).value = "sd15-lora"
        app.screen.query_one("#new-data", Input).value = str(data)
        await pilot.click("#new-create")
        await wait_until(pilot, lambda: isinstance(app.screen, HomeScreen))
        assert "faery" in rows(app)
    config = load_config(workspace / "faery" / "config.toml")
    assert config.preset == "sd15-lora" and config.data.concepts[0].path == str(data)


async def test_review_opens_the_runs_data_with_its_settings(cli, workspace: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = make_dataset(tmp_path / "10_faery")
    assert cli("new", "faery", "--preset", "sd15-lora", "--data", str(data)).returncode == 0
    assert cli("new", "empty", "--preset", "sd15-lora").returncode == 0
    app = TuitrainApp(workspace, image_protocol=HALFCELL)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await pilot.press("d")  # "empty" is first: it has no data folder, and says so
        assert isinstance(app.screen, HomeScreen)
        assert any("no data folder" in message for message in notifications(app))
        await pilot.press("down", "enter")  # Enter on a row reviews it too
        screen = await settled(pilot, "a.bmp")
        assert isinstance(screen, ReviewScreen)
        assert screen.source.buckets.resolution == 512  # the config's, not the cull default's
        assert screen.model.current is not None and screen.model.current.concept.effective_repeats == 10
        await pilot.press("escape")
        assert isinstance(app.screen, HomeScreen)


async def test_e_opens_the_config_editor_and_o_opens_the_dashboard(cli, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    from tuitrain.runs.events import append_event, make_event
    from tuitrain.tui.dashboard import DashboardScreen

    assert cli("new", "faery", "--preset", "sd15-lora").returncode == 0
    events = workspace / "faery" / "events.jsonl"
    append_event(events, make_event("started", total_steps=10, total_epochs=1))
    for step in range(1, 4):
        append_event(events, make_event("step", step=step, epoch=1, loss=0.5 / step, lr=1e-4, grad_norm=1.0, it_per_s=2.0))
    append_event(events, make_event("finished", status="completed", reason="", step=3))
    app = TuitrainApp(workspace, image_protocol=HALFCELL)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("e")
        await pilot.pause()
        from tuitrain.tui.config_editor import ConfigEditorScreen

        assert isinstance(app.screen, ConfigEditorScreen)
        assert app.screen.config_path == workspace / "faery" / "config.toml"
        await pilot.press("escape")  # nothing changed: closes at once
        await pilot.pause()
        assert isinstance(app.screen, HomeScreen)
        await pilot.press("o")
        await pilot.pause(0.5)
        assert isinstance(app.screen, DashboardScreen)
        assert app.screen.run.name == "faery"
        await pilot.press("d")  # detach: back home, the run untouched
        await pilot.pause()
        assert isinstance(app.screen, HomeScreen)


async def test_delete_asks_moves_the_run_to_the_trash_and_u_brings_it_back(cli, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    from tuitrain.tui.home import ConfirmDelete

    assert cli("new", "fae", "--preset", "sd15-lora").returncode == 0
    assert cli("new", "owl", "--preset", "sd15-lora").returncode == 0
    (workspace / "fae" / "output" / "fae.safetensors").write_bytes(b"weights")
    app = TuitrainApp(workspace, image_protocol=HALFCELL)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        await pilot.press("delete")
        assert isinstance(app.screen, ConfirmDelete)
        assert "tuitrain delete --undo" in str(app.screen.query_one(Static).render())
        await pilot.press("n")  # keep it
        await pilot.pause()
        assert isinstance(app.screen, HomeScreen) and set(rows(app)) == {"fae", "owl"}

        await pilot.press("x", "y")
        await wait_until(pilot, lambda: set(rows(app)) == {"owl"})
        assert not (workspace / "fae").exists()
        assert any("Moved fae to the trash" in m and "u brings it back" in m for m in notifications(app))
        assert cli("runs").stdout.split()[0] == "owl"

        await pilot.press("u")
        await wait_until(pilot, lambda: set(rows(app)) == {"fae", "owl"})
        assert any(m == "Restored fae" for m in notifications(app))
        assert app.screen.selected_run().name == "fae"  # type: ignore[attr-defined]
    assert (workspace / "fae" / "output" / "fae.safetensors").read_bytes() == b"weights"
    assert not (workspace / ".tuitrain-trash").exists()


async def test_delete_refuses_a_running_run(cli, workspace: Path) -> None:  # type: ignore[no-untyped-def]
    assert cli("new", "live", "--preset", "sd15-lora").returncode == 0
    run = RunDir(workspace / "live")
    trainer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        write_pidfile(run.pidfile, trainer.pid)
        append_event(run.events, make_event("started", total_steps=40))
        app = TuitrainApp(workspace, image_protocol=HALFCELL)
        async with app.run_test(size=(120, 30)) as pilot:
            await pilot.pause()
            await pilot.press("delete")
            await pilot.pause()
            assert isinstance(app.screen, HomeScreen)  # no question: it cannot be deleted now
            assert any("Not deleted: run live is running" in m for m in notifications(app))
    finally:
        trainer.kill()
        trainer.wait()
    assert run.root.is_dir()
