"""The base of tuitrain's full screens (runs, review, dashboard, compare, config editor).

Textual follows every push, and an app's first screen, with a ScreenResume that applies CSS to
every widget of the screen again. For a screen shown for the first time that repeats the styling
its widgets got a moment before, at mount: profiled, 0.18 of the 0.60 s from `e` on the runs
screen to the config editor's first frame. So the first resume keeps the styles; later ones (back
from a screen on top, after which a theme may have changed) restyle as Textual does.
A screen taken down has its garbage collected soon after, while the user looks (tui/garbage.py).
"""

from __future__ import annotations

from textual import events
from textual.screen import Screen, ScreenResultType

from tuitrain.tui.base_app import BaseApp


class AppScreen(Screen[ScreenResultType]):
    _shown_before = False

    def _on_screen_resume(self, event: events.ScreenResume) -> None:
        # Runs before Screen._on_screen_resume (Textual calls each class's handler, subclass first).
        if not self._shown_before:
            self._shown_before = True
            event.refresh_styles = False

    def _on_unmount(self) -> None:
        # The screen's widgets are garbage now: collected once the screen under it is drawn (tui/garbage.py).
        if isinstance(self.app, BaseApp):
            self.app.settle_garbage_soon()
