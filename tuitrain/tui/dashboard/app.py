"""`tuitrain attach`'s app: the dashboard on its own, with the user's theme.

The home screen pushes DashboardScreen itself; this small App exists so attach
does not depend on the home screen's app.
"""

from __future__ import annotations

from pathlib import Path

from tuitrain.runs.layout import RunDir
from tuitrain.settings import LoadedSettings
from tuitrain.tui.base_app import BaseApp
from tuitrain.tui.dashboard.screen import DashboardScreen


class AttachApp(BaseApp[str]):
    """Shows one run's dashboard; returns how it was left ("detach", "stop" or "quit")."""

    TITLE = "tuitrain"

    def __init__(self, run: RunDir | Path, image_protocol: str | None = None,
                 settings: LoadedSettings | None = None) -> None:
        super().__init__(settings=settings)
        self.run_dir = run if isinstance(run, RunDir) else RunDir(Path(run))
        self.sub_title = self.run_dir.name
        self.protocol = image_protocol

    def first_screen(self) -> DashboardScreen:
        return DashboardScreen(self.run_dir, self.protocol)
