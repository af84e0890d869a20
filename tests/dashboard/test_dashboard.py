"""The dashboard in Pilot against a fake trainer (a real process on the real socket and event file)."""

from __future__ import annotations

import os
import signal
import time

from textual.widgets import RichLog

from tests.dashboard.conftest import commands_received, wait_for
from tuitrain.runs.layout import RunDir
from tuitrain.tui.dashboard import DashboardScreen
from tuitrain.tui.dashboard.app import AttachApp
from tuitrain.tui.dashboard.dialogs import ConfirmStop, QuitChoice
from tuitrain.tui.dashboard.widgets import LossPlot, SampleCard, SamplesPanel

SIZE = (150, 44)


def dashboard(app: AttachApp) -> DashboardScreen:
    return next(s for s in app.screen_stack if isinstance(s, DashboardScreen))


def log_text(screen: DashboardScreen) -> str:
    return "\n".join(strip.text for strip in screen.query_one(RichLog).lines)


async def test_every_key_sends_its_command(run: RunDir, fake_trainer) -> None:
    fake_trainer("--steps", "100000", "--rate", "20", "--prompts", "2")
    app = AttachApp(run, "halfcell")
    async with app.run_test(size=SIZE) as pilot:
        dash = dashboard(app)
        await wait_for(pilot, lambda: dash.status.label == "running" and dash.model.step > 2, "running")
        await pilot.press("p")
        await wait_for(pilot, lambda: dash.status.label == "paused", "paused")
        paused_at = dash.model.step
        await pilot.pause(0.3)
        assert dash.model.step == paused_at  # the trainer really stopped stepping
        await pilot.press("p")
        await wait_for(pilot, lambda: dash.status.label == "running", "resumed")
        await pilot.press("s")
        await wait_for(pilot, lambda: dash.model.saved, "saved")
        await pilot.press("m")
        await wait_for(pilot, lambda: len(dash.model.rounds) == 1 and len(dash.model.rounds[0].samples) == 2, "samples")
        await pilot.press("b")
        await wait_for(pilot, lambda: dash.model.backups, "backup")
        await pilot.press("x")
        assert isinstance(app.screen, ConfirmStop)
        await pilot.press("n")  # asked, and declined: nothing sent
        assert not isinstance(app.screen, ConfirmStop)
        await pilot.pause(0.3)
        assert "stop" not in commands_received(run)
        await pilot.press("x", "y")
        await wait_for(pilot, lambda: dash.status.label == "stopped", "stopped", timeout=10)
        assert commands_received(run) == ["pause", "resume", "save", "sample", "backup", "stop"]
        assert len(list(run.output.glob("*.safetensors"))) == 2  # "save now", then the save on stop
        # the samples panel shows one card per prompt, with the prompt and the step
        cards = [c for c in dash.query(SampleCard) if c.display]
        await wait_for(pilot, lambda: all(c.sample is not None for c in cards), "sample cards")
        assert [c.sample.prompt for c in cards] == ["a red square with a blue mark", "a photo of a cat"]
        assert "saved" in log_text(dash) and "backup" in log_text(dash)
        await pilot.press("p")  # nothing to pause any more: says so, does not crash
        await pilot.press("q")  # a finished run: no question
    assert app.return_code == 0 and app.return_value == "quit"


async def test_quit_asks_detach_or_stop(run: RunDir, fake_trainer) -> None:
    trainer = fake_trainer("--steps", "100000", "--rate", "20")
    app = AttachApp(run, "halfcell")
    async with app.run_test(size=SIZE) as pilot:
        dash = dashboard(app)
        await wait_for(pilot, lambda: dash.status.label == "running", "running")
        await pilot.press("q")
        assert isinstance(app.screen, QuitChoice)
        await pilot.press("escape")
        assert app.screen is dash
        await pilot.press("q", "d")
    assert app.return_value == "detach"
    assert trainer.poll() is None and commands_received(run) == []  # detaching leaves the trainer alone

    app = AttachApp(run, "halfcell")
    async with app.run_test(size=SIZE) as pilot:
        dash = dashboard(app)
        await wait_for(pilot, lambda: dash.status.label == "running", "running again")
        await pilot.press("q", "x")
    assert app.return_value == "stop"
    assert trainer.wait(10) == 0 and commands_received(run) == ["stop"]


async def test_detach_key_leaves_the_run_going(run: RunDir, fake_trainer) -> None:
    trainer = fake_trainer("--steps", "100000", "--rate", "20")
    app = AttachApp(run, "halfcell")
    async with app.run_test(size=SIZE) as pilot:
        dash = dashboard(app)
        await wait_for(pilot, lambda: dash.status.label == "running", "running")
        await pilot.press("d")
    assert app.return_value == "detach" and trainer.poll() is None


async def test_history_is_replayed_then_followed(run: RunDir, fake_trainer) -> None:
    """A long past (20,000 events, samples of every epoch) is all there, then new events keep coming."""
    trainer = fake_trainer("--history", "20000", "--steps", "100000", "--rate", "50", "--steps-per-epoch", "20",
                           "--sample-every-epochs", "1", "--prompts", "3")
    deadline = time.monotonic() + 20
    while not (run.samples.exists() and len(list(run.samples.glob("*.png"))) >= 6) and time.monotonic() < deadline:
        time.sleep(0.05)
    history_steps = 18181  # write_history: one memory event every 10 steps
    app = AttachApp(run, "halfcell")
    async with app.run_test(size=SIZE) as pilot:
        dash = dashboard(app)
        await wait_for(pilot, lambda: dash.model.replayed, "the replay")
        with dash.model.lock:
            assert len(dash.model.loss) >= history_steps  # the whole curve, decimated
            assert dash.model.loss.xs[0] == 1
            assert len(dash.model.rounds) >= 2
        step_then = dash.model.step
        await wait_for(pilot, lambda: dash.model.step > step_then + 10, "live steps after the replay")
        plot = dash.query_one(LossPlot)
        await wait_for(pilot, lambda: plot.data is not None and plot.data.x[-1] > history_steps, "the plot")
        assert len(plot.data.x) <= plot.columns()  # the plot gets a screenful of points, not 18k
        # keys browse earlier rounds and other prompts; end goes back to the latest
        panel = dash.query_one(SamplesPanel)
        latest = panel.current()
        await pilot.press("left")
        assert panel.current() is not latest and panel.selected is not None
        await pilot.press("right", "end")
        assert panel.selected is None
        await pilot.press("down")
        assert panel.prompt_offset == 1
        await pilot.press("l")
        await wait_for(pilot, lambda: plot.border_subtitle == "log", "log scale")
        assert plot.log_scale
        await pilot.press("d")
    assert trainer.poll() is None


async def test_trainer_death_shows_failed_within_two_seconds(run: RunDir, fake_trainer) -> None:
    trainer = fake_trainer("--steps", "20", "--rate", "50", "--error-at", "10", "--hang")
    app = AttachApp(run, "halfcell")
    async with app.run_test(size=SIZE) as pilot:
        dash = dashboard(app)
        await wait_for(pilot, lambda: dash.model.last_error and dash.status.label == "running", "the error event")
        os.kill(trainer.pid, signal.SIGKILL)  # what the OOM killer does
        killed = time.monotonic()
        await wait_for(pilot, lambda: dash.status.label == "failed", "failed", timeout=5)
        assert time.monotonic() - killed < 2.0
        assert "CUDA out of memory (fake)" in dash.status.reason and "ended without finishing" in dash.status.reason
        await pilot.pause(0.2)
        status_line = str(dash.query_one("#status").render())
        assert "FAILED" in status_line and "CUDA out of memory" in status_line
        assert "Traceback" in log_text(dash) and "error: CUDA out of memory (fake)" in log_text(dash)
        await pilot.press("p", "s", "x")  # keys on a dead run say so; nothing crashes
        assert app.screen is dash
        await pilot.press("q")
    assert app.return_value == "quit"


async def test_train_key_reports_why_a_run_cannot_start(cli, workspace) -> None:  # type: ignore[no-untyped-def]
    assert cli("new", "nodata", "--preset", "sd15-lora").returncode == 0
    app = AttachApp(workspace / "nodata", "halfcell")
    async with app.run_test(size=SIZE) as pilot:
        dash = dashboard(app)
        await wait_for(pilot, lambda: dash.status.label == "not started", "not started")
        await pilot.press("t")
        await wait_for(pilot, lambda: dash.status.label == "failed", "the refusal", timeout=60)
        assert "cannot train" in dash.status.reason
        assert "cannot train" in log_text(dash)
        await pilot.press("q")


def test_attach_command_errors(cli, workspace, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = cli("attach", "nope")
    assert out.returncode == 2 and "nope: no such config file, run directory, or run" in out.stderr
    loose = tmp_path / "loose.toml"
    loose.write_text('preset = "sd15-lora"\n')
    out = cli("attach", str(loose))
    assert out.returncode == 2 and "is not a run" in out.stderr
