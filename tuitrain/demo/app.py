"""The TUI for `tuitrain demo`: the home screen, with the demo run's data review on top of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tuitrain.runs.layout import RunDir
from tuitrain.tui.app import TuitrainApp
from tuitrain.tui.home import HomeScreen

from tuitrain.demo.setup import NOTICE


def demo_hint(run: RunDir) -> str:
    return (
        f"Next steps. 1 Review: go through the images (space/n next, Delete culls, c edits a caption, "
        f"r runs the pre-flight report: it finds the planted unreadable file, too-small image, "
        f"duplicate and missing caption). "
        f"2 Config: Escape goes back to the runs; the config is {run.config} (tuitrain check {run.name}). "
        f"3 Train: on the home screen, o opens its dashboard, t starts the trainer there "
        f"(or from a shell: tuitrain train {run.name} --detach). "
        f"The home screen's bottom line keeps saying the next step."
    )


class DemoApp(TuitrainApp):
    """TuitrainApp opened on the demo run: home underneath (so Escape lands there), review on top."""

    def __init__(self, workspace: Path, run: RunDir, **kwargs: Any) -> None:
        super().__init__(workspace, **kwargs)
        self.demo_run = run

    def on_mount(self) -> None:
        # Textual calls every class's on_mount in turn: the bases' ones notify settings problems and apply keys.
        from tuitrain.tui.review.screen import ReviewScreen
        from tuitrain.tui.review.source import ReviewSource

        home = self.screen  # the first screen (review_source is None)
        if isinstance(home, HomeScreen):
            self.call_after_refresh(self._select_demo_run, home)
        source = ReviewSource.from_config(self.demo_run.config, title=self.demo_run.name)
        self.push_screen(ReviewScreen(source, self.image_protocol.protocol, cache_dir=self.cache_dir))
        self.notify(NOTICE, title="tuitrain demo", timeout=20)
        self.notify(demo_hint(self.demo_run), title="What next", timeout=60)

    def _select_demo_run(self, home: HomeScreen) -> None:
        from textual.widgets import DataTable

        try:
            table = home.query_one("#runs", DataTable)
            table.move_cursor(row=table.get_row_index(self.demo_run.name))
        except Exception:  # the table may not list it yet; selection is only a convenience
            pass
