"""The live dashboard of one run: progress, loss, memory, samples, log, and keys to drive the trainer.

Events never render anything: the follower thread folds them into the model
under a lock, and a 10 Hz timer redraws only the parts whose version moved
(the loss plot at most once a second while events stream in). So the cost of
the screen follows the clock, not the trainer's event rate.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from PIL import Image
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import RichLog, Static

from tuitrain.runs.control import send_command
from tuitrain.runs.follow import FollowBatch, RunFollower
from tuitrain.runs.layout import RunDir
from tuitrain.runs.pidfile import TrainerProcess, is_alive
from tuitrain.tui.app_screen import AppScreen
from tuitrain.tui.base_app import dismiss_or_exit
from tuitrain.tui.dashboard import render
from tuitrain.tui.dashboard.dialogs import ConfirmStop, FinishedChoice, QuitChoice
from tuitrain.tui.dashboard.model import RunModel, Sample, SampleRound, Status
from tuitrain.tui.dashboard.widgets import LossPlot, PlotData, SamplesPanel, fit_picture
from tuitrain.tui.footer import ScreenFooter

STATS_ENV = "TUITRAIN_DASHBOARD_STATS"  # a file: one JSON line per redraw (bench/dashboard_throughput.py)
PROTOCOL_ENV = "TUITRAIN_IMAGE_PROTOCOL"
TICK = 0.1
PLOT_EVERY = 1.0  # seconds between loss-plot redraws while steps stream in
STATS_EVERY = 0.5


class DashboardScreen(AppScreen[str]):
    """Dismissed with "detach", "stop" or "quit" (the caller decides where to go next)."""

    HELP_GROUP = "Dashboard"
    DEFAULT_CSS = """
    DashboardScreen { layout: vertical; }
    DashboardScreen #status { height: 1; padding: 0 1; background: $panel; }
    DashboardScreen #progress { height: 3; padding: 0 1; }
    DashboardScreen #middle, DashboardScreen #bottom { height: 1fr; }
    DashboardScreen .box { border: round $primary 50%; border-title-color: $text; }
    DashboardScreen #loss { width: 3fr; }
    DashboardScreen #stats { width: 2fr; height: 1fr; padding: 0 1; }
    DashboardScreen #samples { width: 3fr; padding: 0 1; }
    DashboardScreen #log { width: 2fr; }
    """
    BINDINGS = [
        Binding("p", "pause", "Pause/resume", id="dashboard.pause"),
        Binding("s", "command('save')", "Save", id="dashboard.save"),
        Binding("m", "command('sample')", "Sample", id="dashboard.sample"),
        Binding("b", "command('backup')", "Backup", id="dashboard.backup"),
        Binding("x", "stop", "Stop", id="dashboard.stop"),
        Binding("t", "train", "Train", id="dashboard.train"),
        Binding("l", "log_scale", "Log scale", id="dashboard.log_scale"),
        Binding("c", "compare", "Compare saves", id="dashboard.compare"),
        Binding("left,left_square_bracket", "round(-1)", "Earlier samples", show=False, id="dashboard.samples.earlier"),
        Binding("right,right_square_bracket", "round(1)", "Later samples", show=False, id="dashboard.samples.later"),
        Binding("end", "round(0)", "Latest samples", show=False, id="dashboard.samples.latest"),
        Binding("up", "prompt(-1)", "Previous prompts", show=False, id="dashboard.samples.up"),
        Binding("down", "prompt(1)", "Next prompts", show=False, id="dashboard.samples.down"),
        Binding("d", "detach", "Detach", id="dashboard.detach"),
        Binding("q", "quit_dashboard", "Quit", id="dashboard.quit"),
    ]
    NARROW_LABELS = {"pause": "Pause", "log_scale": "Log y", "compare": "Compare"}  # the footer's, below 100 columns

    def __init__(self, run_dir: Path | RunDir, image_protocol: str | None = None) -> None:
        super().__init__()
        self.run = run_dir if isinstance(run_dir, RunDir) else RunDir(Path(run_dir))
        self.model = RunModel()
        self._protocol = image_protocol
        self._follower: RunFollower | None = None
        self._seen: dict[str, Any] = {}
        self._last_plot = self._last_stats = self._last_clock = 0.0
        self._plot_forced = True
        self._log_seq = 0
        self._status = Status("loading")
        self._launch: TrainerProcess | None = None
        self._launch_dead_since: float | None = None
        self._shown_paths: tuple[str, ...] | None = None
        self._pictures: dict[str, Image.Image | str] = {}
        self._colours = dict(render.DEFAULT_PALETTE)
        stats = os.environ.get(STATS_ENV)
        self._stats_file = open(stats, "a", encoding="utf-8") if stats else None  # noqa: SIM115

    @property
    def status(self) -> Status:
        """The run's state as last drawn."""
        return self._status

    @property
    def up_to_date(self) -> bool:
        """Is everything the model knows on the screen? (Tests and snapshots wait for it.)"""
        m, seen = self.model, self._seen
        with m.lock:
            return (m.replayed and seen.get("status") == m.v_status and seen.get("progress") == m.v_progress
                    and seen.get("loss") == m.v_loss and seen.get("stats") == (m.v_memory, m.v_progress)
                    and seen.get("samples") == m.v_samples and (not m.log or self._log_seq == m.log[-1].seq))

    # -- layout ---------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static("", id="status")
        yield Static("", id="progress")
        with Horizontal(id="middle"):
            plot = LossPlot(id="loss", classes="box")
            plot.border_title = "loss (l: log scale)"
            yield plot
            stats = Static("", id="stats", classes="box")
            stats.border_title = "learning rate · grad norm · memory"
            yield stats
        with Horizontal(id="bottom"):
            samples = SamplesPanel(self._image_class(), id="samples", classes="box")
            samples.border_title = "samples"
            yield samples
            log = RichLog(id="log", classes="box", max_lines=1000, wrap=True, markup=False, highlight=False,
                          min_width=20)
            log.can_focus = False  # the arrow keys browse samples
            log.border_title = "log"
            yield log
        yield ScreenFooter()

    def _image_class(self) -> type:
        from tuitrain.tui.image_protocol import CONCRETE, widget_class

        protocol = self._protocol
        if protocol is None:
            choice = getattr(self.app, "image_protocol", None)
            protocol = getattr(choice, "protocol", None) or os.environ.get(PROTOCOL_ENV) or "halfcell"
        self._protocol = protocol if protocol in CONCRETE else "halfcell"
        return widget_class(self._protocol)

    def on_mount(self) -> None:
        self._colours = render.palette(self.app.theme_variables)
        plot = self.query_one(LossPlot)
        plot.colours = (_rgb(self.app.theme_variables.get("foreground", "#888888"), 0.45),
                        _rgb(self._colours["primary"]))
        self._follower = RunFollower(self.run, self._on_batch)
        self._follower.start()
        self.set_interval(TICK, self._tick)
        self._tick()

    def on_unmount(self) -> None:
        if self._follower is not None:
            self._follower.stop()
        if self._stats_file is not None:
            self._stats_file.close()

    def on_resize(self) -> None:
        self._plot_forced = True
        self._seen.clear()

    # -- the follower's thread ------------------------------------------------------------------
    def _on_batch(self, batch: FollowBatch) -> None:
        model = self.model
        with model.lock:
            if batch.reset:
                model.reset()
            if batch.events:
                model.apply(batch.events)
            if batch.log_lines:
                model.add_trainer_lines(batch.log_lines)
            model.set_alive(batch.alive, batch.pid)
            if batch.replay_done:
                model.replayed = True

    # -- the timer ------------------------------------------------------------------------------
    def _tick(self) -> None:
        now = time.monotonic()
        m = self.model
        with m.lock:
            self._check_launch(now)
            status = m.status()
            seen = self._seen
            progress = status_text = stats = plot_data = rounds = None
            if status != self._status or seen.get("status") != m.v_status:
                status_text = render.status_line(m, status, self.run.name, self._colours)
                seen["status"] = m.v_status
                self._plot_forced = True  # e.g. the replay just ended: draw it all now
                self._last_stats = 0.0
            if seen.get("progress") != m.v_progress or now - self._last_clock >= 1.0:
                progress = render.progress(m, self.size.width - 2)
                seen["progress"] = m.v_progress
                self._last_clock = now
            plot = self.query_one(LossPlot)
            if self._plot_forced or (seen.get("loss") != m.v_loss and now - self._last_plot >= PLOT_EVERY):
                plot_data = PlotData.from_series(m.loss, plot.columns(), m.eval_points() if m.evals else None)
                seen["loss"] = m.v_loss
                self._plot_forced = False
                self._last_plot = now
            stats_key = (m.v_memory, m.v_progress)
            if seen.get("stats") != stats_key and now - self._last_stats >= STATS_EVERY:
                stats = render.stats(m, self.query_one("#stats").content_size.width or 40, self._colours)
                seen["stats"] = stats_key
                self._last_stats = now
            if seen.get("samples") != m.v_samples:
                rounds = [SampleRound(r.step, r.epoch, dict(r.samples)) for r in m.rounds]
                seen["samples"] = m.v_samples
            new_log = m.log_after(self._log_seq) if m.log and m.log[-1].seq != self._log_seq else []
            lag = time.time() - m.last_event_time if m.last_event_time else None
            events_seen = m.events_seen
        if status != self._status:
            self._status = status
            self.refresh_bindings()
        if status_text is not None:
            self.query_one("#status", Static).update(status_text, layout=False)
        if progress is not None:
            self.query_one("#progress", Static).update(progress, layout=False)
        if plot_data is not None:
            plot.show(plot_data, plot.log_scale)
        if stats is not None:
            self.query_one("#stats", Static).update(stats, layout=False)
        if rounds is not None:
            self.query_one(SamplesPanel).rounds = rounds
            self._show_samples()
        if new_log:
            self._log_seq = new_log[-1].seq
            log = self.query_one(RichLog)
            for entry in new_log[-300:]:
                log.write(render.log_line(entry, self._colours))
        if self._stats_file is not None and seen.get("stats_events") != events_seen:
            seen["stats_events"] = events_seen
            self._stats_file.write(json.dumps({"t": time.time(), "lag": lag, "events": events_seen}) + "\n")
            self._stats_file.flush()

    def _check_launch(self, now: float) -> None:
        """A trainer we started that died before saying "started" is a failed start (lock held)."""
        m = self.model
        if not m.launching or self._launch is None:
            return
        if is_alive(self._launch):
            self._launch_dead_since = None
            return
        if self._launch_dead_since is None:
            self._launch_dead_since = now  # its last events may not be read yet: wait for the follower
        elif now - self._launch_dead_since > 1.5:
            m.launching = None
            m.launch_error = "the trainer exited while starting (see the log)"
            m.v_status += 1

    # -- samples --------------------------------------------------------------------------------
    def on_samples_panel_resized(self, _: SamplesPanel.Resized) -> None:
        self._shown_paths = None
        self._show_samples()

    def _show_samples(self) -> None:
        panel = self.query_one(SamplesPanel)
        self.query_one("#samples-head", Static).update(panel.head(), layout=False)
        shown = panel.shown()
        paths = tuple(s.path for s in shown)
        if paths == self._shown_paths:
            return
        self._shown_paths = paths
        self._load_pictures(shown)

    @work(thread=True, exclusive=True, group="samples")
    def _load_pictures(self, shown: list[Sample]) -> None:
        loaded: list[tuple[Sample, Image.Image | None, str]] = []
        for sample in shown:
            picture = self._pictures.get(sample.path)
            if picture is None:
                try:
                    picture = fit_picture(sample.path)
                except (OSError, ValueError) as exc:
                    picture = f"cannot read {Path(sample.path).name}: {exc.__class__.__name__}"
                if len(self._pictures) > 64:
                    self._pictures.clear()
                self._pictures[sample.path] = picture
            if isinstance(picture, str):
                loaded.append((sample, None, picture))
            else:
                loaded.append((sample, picture, ""))
        self.app.call_from_thread(self._set_cards, loaded)

    def _set_cards(self, loaded: list[tuple[Sample, Image.Image | None, str]]) -> None:
        from tuitrain.tui.dashboard.widgets import SampleCard

        for i, card in enumerate(self.query_one(SamplesPanel).query(SampleCard)):
            card.display = i < len(loaded)
            if i < len(loaded):
                card.show(*loaded[i])
            elif card.sample is not None:
                card.show(None, None)

    # -- keys -----------------------------------------------------------------------------------
    def _send(self, cmd: str, done: str) -> None:
        if not self._status.live:
            self.notify(f"the trainer is not running ({self._status.label}); t starts it", severity="warning")
            return
        self._send_worker(cmd, done)

    @work(thread=True, group="commands")
    def _send_worker(self, cmd: str, done: str) -> None:
        try:
            send_command(self.run.socket, cmd)
        except OSError as exc:
            self.app.call_from_thread(self.notify, f"{cmd}: the trainer did not answer ({exc})", severity="error")
            return
        self.app.call_from_thread(self.notify, done, timeout=3)

    def action_pause(self) -> None:
        if self._status.label == "paused":
            self._send("resume", "resume sent")
        else:
            self._send("pause", "pause sent: the trainer pauses after this step")

    def action_command(self, cmd: str) -> None:
        self._send(cmd, {"save": "saving now", "sample": "sampling now", "backup": "backing up now"}.get(cmd, cmd))

    def action_stop(self) -> None:
        if not self._status.live:
            self.notify(f"the trainer is not running ({self._status.label})", severity="warning")
            return
        self.app.push_screen(ConfirmStop(), self._stop_answer)

    def _stop_answer(self, yes: bool | None) -> None:
        if yes:
            self._request_stop()

    def _request_stop(self) -> None:
        with self.model.lock:
            self.model.stop_requested = True
            self.model.v_status += 1
        self._send_worker("stop", "stop sent: the trainer saves, then stops")

    def action_train(self) -> None:
        if self._status.live or self._status.label in ("starting", "loading"):
            self.notify(f"the trainer is already {self._status.label}", severity="warning")
            return
        if self._status.label == "finished":
            self._ask_finished()
            return
        self._launch_here()

    def _launch_here(self, *extra: str) -> None:
        """Start this run's trainer (`extra`: --more-epochs N for a finished run)."""
        with self.model.lock:
            self.model.launching = "starting the trainer"
            self.model.launch_error = None
            self.model.v_status += 1
        self._launch = None
        self._launch_dead_since = None
        self._start_worker(*extra)

    def _ask_finished(self) -> None:
        """A finished run trains again only as a continuation or as a new run (runs/continuation.py)."""
        from tuitrain.runs import continuation

        info = continuation.finished_run(self.run)
        if info is None:  # the log moved on since the last redraw
            self._launch_here()
            return
        epochs = self.model.total_epochs or 1
        total = f"/{info.total_steps}" if info.total_steps else ""
        summary = f"step {info.step}{total}, {epochs} epoch{'s' if epochs != 1 else ''}"
        dialog = FinishedChoice(self.run.name, summary, epochs, continuation.next_free_name(self.run))
        self.app.push_screen(dialog, self._finished_answer)

    def _finished_answer(self, answer: tuple[str, str] | None) -> None:
        if answer is None:
            return
        what, value = answer
        if what == "continue":
            self._launch_here("--more-epochs", value)
        else:
            self.notify(f"making run {value} from this run's config", timeout=3)
            self._new_run_worker(value)

    @work(thread=True, exclusive=True, group="launch")
    def _new_run_worker(self, name: str) -> None:
        from tuitrain.tui.dashboard.launch import start_training

        result = start_training(self.run, "--as-new", name)
        if not result.ok:
            with self.model.lock:
                for line in result.message.splitlines()[-20:]:
                    self.model.add_log("error", line, time.time())
                self.model.v_status += 1
            self.app.call_from_thread(self.notify, result.message.splitlines()[-1] if result.message else
                                      "could not start the new run", severity="error")
            return
        self.app.call_from_thread(self._open_run, self.run.root.parent / name)

    def _open_run(self, root: Path) -> None:
        """The new run's dashboard on top; leaving it leaves this one the same way."""
        self.app.push_screen(DashboardScreen(root, self._protocol), self._leave)

    @work(thread=True, exclusive=True, group="launch")
    def _start_worker(self, *extra: str) -> None:
        from tuitrain.tui.dashboard.launch import start_training

        result = start_training(self.run, *extra)
        with self.model.lock:
            for line in result.message.splitlines()[-20:]:
                self.model.add_log("info" if result.ok else "error", line, time.time())
            if not result.ok:
                self.model.launching = None
                self.model.launch_error = result.message.splitlines()[-1] if result.message else "could not start"
            else:
                self._launch = result.process
                if self.model.launching:
                    self.model.launching = "the trainer is loading the model"
            self.model.v_status += 1

    def action_log_scale(self) -> None:
        plot = self.query_one(LossPlot)
        plot.log_scale = not plot.log_scale
        self._plot_forced = True

    def action_compare(self) -> None:
        """The compare view: every round's samples side by side, with the eval loss of each save."""
        from tuitrain.tui.dashboard.compare import CompareScreen

        self.app.push_screen(CompareScreen(self.run, self.model, self._image_class(), self._status.live))

    def action_round(self, delta: int) -> None:
        panel = self.query_one(SamplesPanel)
        if delta == 0:
            panel.selected = None
        else:
            panel.browse_round(delta)
        self._show_samples()

    def action_prompt(self, delta: int) -> None:
        panel = self.query_one(SamplesPanel)
        panel.browse_prompt(delta)
        self._show_samples()

    def _leave(self, how: str | None) -> None:
        """Close the dashboard, saying how ("detach", "quit", "stop"); as `tuitrain attach`'s first screen, end it."""
        dismiss_or_exit(self, how)

    def action_detach(self) -> None:
        self._leave("detach")

    def action_quit_dashboard(self) -> None:
        if not self._status.live:
            self._leave("quit")
            return
        self.app.push_screen(QuitChoice(), self._quit_answer)

    def _quit_answer(self, answer: str | None) -> None:
        if answer == "detach":
            self._leave("detach")
        elif answer == "stop":
            try:  # here, not on a worker: the screen is about to go
                send_command(self.run.socket, "stop")
            except OSError as exc:
                self.notify(f"stop: the trainer did not answer ({exc})", severity="error")
                return
            self._leave("stop")


def _rgb(colour: str, alpha: float = 1.0) -> tuple[int, int, int]:
    """A theme colour as an RGB triple for plotext (alpha blends toward mid-grey)."""
    from textual.color import Color

    try:
        r, g, b = Color.parse(colour).rgb
    except Exception:  # noqa: BLE001 - any unparsable theme value
        r, g, b = (136, 136, 136)
    grey = 128
    return (round(grey + (r - grey) * alpha), round(grey + (g - grey) * alpha), round(grey + (b - grey) * alpha))
