"""The training dashboard: follow a run live and drive its trainer (issue 6).

`DashboardScreen(run_dir)` is the screen (the home screen pushes it);
`AttachApp` shows it alone for `tuitrain attach`.
"""

from tuitrain.tui.dashboard.screen import DashboardScreen

__all__ = ["DashboardScreen"]
