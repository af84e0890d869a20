"""The tuitrain Textual app and its home screen (the runs of the workspace)."""

from __future__ import annotations

from pathlib import Path

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from tuitrain.runs import list_runs, run_status
from tuitrain.tui.themes import available_themes

STATE_STYLE = {
    "never started": "dim",
    "running": "bold green",
    "paused": "yellow",
    "finished": "cyan",
    "stopped": "yellow",
    "failed": "bold red",
}


class HomeScreen(Screen[None]):
    """Every run in the workspace and its state, refreshed while the screen is open."""

    BINDINGS = [
        Binding("r", "refresh", "Refresh"),
        Binding("q", "app.quit", "Quit"),
    ]

    def __init__(self, workspace: Path) -> None:
        super().__init__()
        self.workspace = workspace

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"Workspace: {self.workspace}", id="workspace")
        yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
        yield Static(id="hint")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#runs", DataTable)
        table.add_columns("run", "state", "step", "family", "preset")
        self.action_refresh()
        self.set_interval(2.0, self.action_refresh)

    def action_refresh(self) -> None:
        from tuitrain.config import ConfigError, load_config

        table = self.query_one("#runs", DataTable)
        table.clear()
        runs = list_runs(self.workspace)
        for run in runs:
            status = run_status(run)
            try:
                config = load_config(run.config)
                family, preset = config.model.family, config.preset or "-"
            except ConfigError:
                family, preset = "?", "config has errors"
            step = f"{status.step}/{status.total_steps}" if status.step is not None and status.total_steps else ""
            style = STATE_STYLE.get(status.state.value, "")
            table.add_row(run.name, f"[{style}]{status.state.value}[/]", step, family, preset, key=run.name)
        hint = self.query_one("#hint", Static)
        if runs:
            hint.update("")
        else:
            hint.update("No runs yet. Create one:  tuitrain new NAME --preset sd15-lora --data DIR")


class TuitrainApp(App[None]):
    TITLE = "tuitrain"

    def __init__(self, workspace: Path) -> None:
        super().__init__()
        self.workspace = workspace

    def on_mount(self) -> None:
        themes, problems = available_themes()
        for theme in themes:
            self.register_theme(theme)
        if any(t.name == "tuitrain-dark" for t in themes):
            self.theme = "tuitrain-dark"
        for message in problems:
            self.notify(message, severity="warning", timeout=10)
        self.push_screen(HomeScreen(self.workspace))
