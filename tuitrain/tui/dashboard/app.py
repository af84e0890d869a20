"""`tuitrain attach`'s app: the dashboard on its own, with the user's theme.

The home screen pushes DashboardScreen itself; this small App exists so attach
does not depend on the home screen's app.
"""

from __future__ import annotations

from pathlib import Path


from tuitrain.runs.layout import RunDir
from tuitrain.settings import DEFAULT_THEME, LoadedSettings, load_settings
from tuitrain.tui.dashboard.screen import DashboardScreen
from tuitrain.tui.key_order import KeyOrderApp
from tuitrain.tui.themes import available_themes


class AttachApp(KeyOrderApp[str]):
    """Shows one run's dashboard; returns how it was left ("detach", "stop" or "quit")."""

    TITLE = "tuitrain"

    def __init__(self, run: RunDir | Path, image_protocol: str | None = None,
                 settings: LoadedSettings | None = None) -> None:
        super().__init__()
        self.run_dir = run if isinstance(run, RunDir) else RunDir(Path(run))
        self.sub_title = self.run_dir.name
        self.protocol = image_protocol
        self.loaded_settings = settings or load_settings()

    def on_mount(self) -> None:
        themes, problems = available_themes()
        for theme in themes:
            self.register_theme(theme)
        wanted = self.loaded_settings.settings.theme
        for name in (wanted, DEFAULT_THEME):
            if name in self.available_themes:
                self.theme = name
                break
        for message in [*self.loaded_settings.problems, *problems]:
            self.notify(message, title="Settings", severity="warning", timeout=10)
        self.push_screen(DashboardScreen(self.run_dir, self.protocol), self.exit)
