"""The home screen: every run of the workspace with its state, and what to do with it."""

from __future__ import annotations

import importlib
from pathlib import Path
from time import monotonic
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from tuitrain.runs import RunDir, RunStatus, list_runs, run_status
from tuitrain.runs.next_step import NO_RUNS, next_step
from tuitrain.runs.trash import RunTrashError, find_trashed_run, live_reason, restore_run, run_trash_dir, trash_run
from tuitrain.tui.app_screen import AppScreen
from tuitrain.tui.footer import ScreenFooter

from tuitrain.tomlcompat import tomllib

STATE_STYLE = {
    "never started": "dim",
    "running": "bold green",
    "paused": "yellow",
    "finished": "cyan",
    "stopped": "yellow",
    "failed": "bold red",
}
REFRESH_SECONDS = 2.0
# Imported in a thread once the runs are on screen: the first e, o or d paid 0.1-0.15 s of imports before
# anything moved (bench/tui_screen_change.py, first round). None of them imports torch.
SCREEN_MODULES = ("tuitrain.tui.config_editor", "tuitrain.tui.dashboard", "tuitrain.tui.review.screen")
IMPORT_SCREENS_AFTER = 0.5  # seconds after the first frame
TRAIN_WAIT_SECONDS = 15.0  # t: how long the dashboard may take to read the run before its own t is pressed


def config_summary(run: RunDir) -> tuple[str, str, str]:
    """(family, preset, data folders) from the raw config file: cheap enough for every refresh.

    Validation is left to the actions that need it (review, check): a broken
    config still lists, and says so.
    """
    try:
        data: dict[str, Any] = tomllib.loads(run.config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return "?", "config unreadable", ""
    model = data.get("model") if isinstance(data.get("model"), dict) else {}
    concepts = data.get("data", {}).get("concepts", []) if isinstance(data.get("data"), dict) else []
    folders = [Path(str(c.get("path", ""))).name for c in concepts if isinstance(c, dict)]
    return str(model.get("family", "-")), str(data.get("preset") or "-"), ", ".join(folders) or "-"


class ConfirmDelete(ModalScreen[bool]):
    """Del on a run: it moves to the workspace's trash, which u (or `tuitrain delete --undo`) undoes."""

    DEFAULT_CSS = """
    ConfirmDelete { align: center middle; }
    ConfirmDelete > Vertical { width: 70; height: auto; padding: 1 2; border: thick $warning; background: $surface; }
    ConfirmDelete .keys { margin-top: 1; color: $text-muted; }
    """
    BINDINGS = [
        Binding("y", "answer(True)", "Delete", id="home.delete.yes"),
        Binding("n,escape", "answer(False)", "Keep", id="home.delete.no"),
    ]

    def __init__(self, run: RunDir) -> None:
        super().__init__()
        self.run = run

    def compose(self) -> ComposeResult:
        trash = escape(str(run_trash_dir(self.run.root.parent)))
        with Vertical():
            yield Static(f"[b]Delete run {escape(self.run.name)}?[/b]\n\nIts folder moves to {trash}/ "
                         "with everything in it (config, samples, saved LoRAs). Nothing is erased: u on this "
                         "screen, or tuitrain delete --undo, brings it back.")
            yield Static("y: delete    n / esc: keep", classes="keys")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class HomeScreen(AppScreen[None]):
    """Runs and their state (refreshed every few seconds); n, d, e, o, Del act on them, u undoes a delete."""

    HELP_GROUP = "Home"
    BINDINGS = [
        Binding("n", "new_run", "New run", id="home.new"),
        Binding("d", "review", "Review data", id="home.review"),
        Binding("e", "edit_config", "Edit config", id="home.config"),
        Binding("o", "dashboard", "Dashboard", id="home.dashboard"),
        Binding("t", "train", "Train", id="home.train"),
        Binding("delete,x", "delete_run", "Delete run", id="home.delete"),
        Binding("u", "undo_delete", "Undo delete", id="home.undo"),
        Binding("r", "refresh", "Refresh", id="home.refresh"),
    ]
    NARROW_LABELS = {  # the footer's, below 100 columns: with t, the full labels cut off '? Help' at 80
        "new_run": "New", "review": "Review", "edit_config": "Config", "dashboard": "Dash", "delete_run": "Delete",
        "undo_delete": "Undo",
    }

    DEFAULT_CSS = """
    HomeScreen #workspace { height: 1; background: $panel; padding: 0 1; }
    HomeScreen #runs { height: 1fr; }
    HomeScreen #hint { height: auto; padding: 0 1; color: $text-muted; }
    """

    def __init__(self, workspace: Path) -> None:
        super().__init__()
        self.workspace = workspace
        self._statuses: dict[str, RunStatus] = {}

    def compose(self) -> ComposeResult:
        yield Static(f"[b]tuitrain[/b]  ·  workspace {escape(str(self.workspace))}", id="workspace")
        yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
        yield Static(id="hint")
        yield ScreenFooter()

    def on_mount(self) -> None:
        table = self.query_one("#runs", DataTable)
        table.add_columns("run", "state", "step", "family", "preset", "data")
        self.action_refresh()
        self.set_interval(REFRESH_SECONDS, self.action_refresh)
        self.set_timer(IMPORT_SCREENS_AFTER, self._import_screens)

    @work(thread=True, exclusive=True, group="import-screens")
    def _import_screens(self) -> None:
        for name in SCREEN_MODULES:
            importlib.import_module(name)

    def action_refresh(self) -> None:
        table = self.query_one("#runs", DataTable)
        selected = self.selected_run()
        table.clear()
        runs = list_runs(self.workspace)
        statuses: dict[str, RunStatus] = {}
        for run in runs:
            status = statuses[run.name] = run_status(run)
            family, preset, data = config_summary(run)
            step = f"{status.step}/{status.total_steps}" if status.step is not None and status.total_steps else ""
            style = STATE_STYLE.get(status.state.value, "")
            table.add_row(run.name, f"[{style}]{status.state.value}[/]", step, family, preset, data, key=run.name)
        if selected is not None and selected.name in {run.name for run in runs}:
            table.move_cursor(row=table.get_row_index(selected.name))
        self._statuses = statuses
        self._show_next_step()

    def _show_next_step(self) -> None:
        """The next step for the selected run (or for an empty workspace), until the run's state says it is done."""
        hint = self.query_one("#hint", Static)
        run = self.selected_run()
        if run is None:
            hint.update(f"No runs yet. [b]Next: n[/b]: {escape(NO_RUNS.text)}  ·  ? lists every key")
            return
        step = next_step(run, self._statuses.get(run.name), cache_dir=getattr(self.app, "cache_dir", None))
        keys = " then ".join(step.keys.split())
        hint.update(f"[b]Next for {escape(run.name)}:[/b] [b]{keys}[/b]: {escape(step.text)}  ·  "
                    "n new run · Del deletes (u undoes) · ? every key")

    def on_screen_resume(self) -> None:
        self.action_refresh()  # back from a review or a dashboard: the next step may be done

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._show_next_step()

    def selected_run(self) -> RunDir | None:
        table = self.query_one("#runs", DataTable)
        if table.row_count == 0:
            return None
        row_key, _ = table.coordinate_to_cell_key((table.cursor_row, 0))
        return RunDir(self.workspace / str(row_key.value))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_review()

    def action_new_run(self) -> None:
        from tuitrain.tui.new_run import NewRunScreen

        def created(name: str | None) -> None:
            if name:
                self.action_refresh()
                table = self.query_one("#runs", DataTable)
                table.move_cursor(row=table.get_row_index(name))
                self.notify(f"Created run {name}. The line under the runs says what to do next.")

        self.app.push_screen(NewRunScreen(self.workspace), created)

    def action_review(self) -> None:
        from tuitrain.config import ConfigError
        from tuitrain.tui.review.screen import ReviewScreen
        from tuitrain.tui.review.source import ReviewSource

        run = self.selected_run()
        if run is None:
            self.notify("No run selected: press n to make one", severity="warning")
            return
        try:
            source = ReviewSource.from_config(run.config, title=run.name)
        except ConfigError as exc:
            title = f"{run.name}: the config has errors"
            self.notify("\n".join(exc.lines()), title=title, severity="error", timeout=15)
            return
        if not source.concepts:
            self.notify(
                f"{run.name} has no data folder yet: add [[data.concepts]] path = \"...\" to {run.config}",
                severity="warning",
                timeout=10,
            )
            return
        self.app.push_screen(ReviewScreen(source, self.app.image_protocol.protocol))  # type: ignore[attr-defined]

    def action_edit_config(self) -> None:
        """The selected run's config in the schema-generated form (the same screen as `tuitrain config`)."""
        from tuitrain.config import ConfigError
        from tuitrain.tui.config_editor import ConfigEditorScreen

        run = self.selected_run()
        if run is None:
            self.notify("No run selected: press n to make one", severity="warning")
            return
        try:
            screen = ConfigEditorScreen(run.config)
        except ConfigError as exc:
            self.notify("\n".join(exc.lines()), title=f"{run.name}: cannot open the config", severity="error",
                        timeout=15)
            return
        self.app.push_screen(screen, lambda _saved: self.action_refresh())

    def action_dashboard(self) -> None:
        """The run's live dashboard: history replayed, then followed; leaving it never stops the run."""
        from tuitrain.tui.dashboard import DashboardScreen

        run = self.selected_run()
        if run is None:
            self.notify("No run selected.", severity="warning")
            return
        protocol = self.app.image_protocol.protocol  # type: ignore[attr-defined]
        self.app.push_screen(DashboardScreen(run.root, protocol), lambda _result: self.action_refresh())

    def action_train(self) -> None:
        """t: the selected run's dashboard, then its own t once it has read the run (the quick start's
        "o, then t" in one key): a running run is left alone, a finished one asks about more epochs,
        exactly as the dashboard's t does there."""
        from tuitrain.tui.dashboard import DashboardScreen

        run = self.selected_run()
        if run is None:
            self.notify("No run selected: press n to make one", severity="warning")
            return
        dashboard = DashboardScreen(run.root, self.app.image_protocol.protocol)  # type: ignore[attr-defined]
        self.app.push_screen(dashboard, lambda _result: self.action_refresh())
        deadline = monotonic() + TRAIN_WAIT_SECONDS

        def press_train() -> None:
            if self.app.screen is not dashboard or monotonic() > deadline:
                timer.stop()  # left, covered by a dialog, or never read: t there is the way
                return
            if dashboard.up_to_date and dashboard.status.label != "loading":
                timer.stop()
                dashboard.action_train()

        timer = self.app.set_interval(0.05, press_train)

    def action_delete_run(self) -> None:
        """Move the selected run to the workspace's trash, after asking; a live run is refused."""
        run = self.selected_run()
        if run is None:
            self.notify("No run selected.", severity="warning")
            return
        reason = live_reason(run)
        if reason:
            self.notify(f"Not deleted: {reason}", severity="error", timeout=8)
            return

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            try:
                trashed = trash_run(run)
            except RunTrashError as exc:
                self.notify(f"Not deleted: {exc}", severity="error", timeout=10)
                return
            self.action_refresh()
            self.notify(f"Moved {run.name} to the trash ({trashed.path}). u brings it back "
                        "(or: tuitrain delete --undo)", timeout=8)

        self.app.push_screen(ConfirmDelete(run), answered)

    def action_undo_delete(self) -> None:
        """Bring back the most recently deleted run (also one deleted with `tuitrain delete`)."""
        trashed = find_trashed_run(self.workspace)
        if trashed is None:
            self.notify("Nothing to undo: no deleted run in the trash", timeout=4)
            return
        try:
            run = restore_run(self.workspace, trashed)
        except RunTrashError as exc:
            self.notify(f"Not restored: {exc}", severity="error", timeout=10)
            return
        self.action_refresh()
        table = self.query_one("#runs", DataTable)
        table.move_cursor(row=table.get_row_index(run.name))
        renamed = f" as {run.name} (a run named {trashed.name} exists)" if run.name != trashed.name else ""
        self.notify(f"Restored {trashed.name}{renamed}", timeout=6)
