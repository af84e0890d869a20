"""What every tuitrain app shares: the user's themes applied before anything is drawn, and the
screen it opens on started as Textual's default screen.

Why the default screen and not push_screen() from on_mount (as the apps did): a screen pushed
while the app is starting is composed and mounted while Textual's start-up batch still holds the
display, so its first full render (80 ms for the config editor) was thrown away and drawn again;
and the ScreenResume that follows a push applied CSS to every widget a second time. Started as
the default screen, the config editor's first frame in a 120x40 pty came at 0.52-0.63 s instead
of 0.74-0.79 s (bench/tui_startup.py). The themes are registered in __init__ for the same
reason: set in on_mount, the theme change restyled a screen that was already composed.

A first screen cannot be dismissed (Textual keeps one screen on the stack): it ends the app
with its result instead, through `dismiss_or_exit`.
"""

from __future__ import annotations

import difflib
from typing import Any

from textual.app import ReturnType
from textual.screen import Screen

from tuitrain.settings import DEFAULT_THEME, LoadedSettings, load_settings, save_setting
from tuitrain.tui.garbage import SETTLE_AFTER_CLOSE, SETTLE_AFTER_START, release_garbage_collector, settle_garbage
from tuitrain.tui.key_order import KeyOrderApp
from tuitrain.tui.layout_once import install as install_layout_once
from tuitrain.tui.themes import available_themes


class BaseApp(KeyOrderApp[ReturnType]):
    """An app with the user's themes, opening on `first_screen()`; subclasses say which screen."""

    def __init__(self, settings: LoadedSettings | None = None, **kwargs: Any) -> None:
        install_layout_once()  # one layout, not two, when widgets change size (tui/layout_once.py)
        super().__init__(**kwargs)
        self.loaded_settings = settings or load_settings()
        self._start_problems = [*self.loaded_settings.problems, *self._apply_themes()]

    def first_screen(self) -> Screen[Any]:
        """The screen the app opens on (composed as the default screen: see the module)."""
        raise NotImplementedError

    def get_default_screen(self) -> Screen[Any]:
        return self.first_screen()

    def on_mount(self) -> None:
        for message in self._start_problems:
            self.notify(message, title="Settings", severity="warning", timeout=12)
        self.theme_changed_signal.subscribe(self, self._remember_theme)
        self.set_timer(SETTLE_AFTER_START, self._settle_if_running)

    def on_unmount(self) -> None:
        release_garbage_collector()

    def settle_garbage_soon(self) -> None:
        """A screen was taken down: free its widgets once the screen under it is drawn (tui/garbage.py)."""
        if self.is_running:
            self.set_timer(SETTLE_AFTER_CLOSE, self._settle_if_running)

    def _settle_if_running(self) -> None:
        """Collect now, unless a typed key is still travelling (KeyOrderApp): a long collection then would
        outlast its marker's give-up time and send the keys behind it astray; try again a moment later."""
        if not self.is_running:
            return
        if self.keys_pending:
            self.set_timer(SETTLE_AFTER_CLOSE, self._settle_if_running)
            return
        settle_garbage()

    def _apply_themes(self) -> list[str]:
        """Register the shipped and the user's themes and choose the settings' one; a problem per line."""
        themes, problems = available_themes()
        for theme in themes:
            self.register_theme(theme)
        wanted = self.loaded_settings.settings.theme
        if wanted in self.available_themes:
            self.theme = wanted
        else:
            near = difflib.get_close_matches(wanted, list(self.available_themes), n=1)
            hint = f"did you mean {near[0]}?" if near else "see the command palette's Theme list"
            problems.append(f"theme: no theme named {wanted!r} ({hint})")
            if DEFAULT_THEME in self.available_themes:
                self.theme = DEFAULT_THEME
        return problems

    def _remember_theme(self, theme: object) -> None:
        """A theme chosen in the command palette is the one the next start uses."""
        name = getattr(theme, "name", str(theme))
        if name == self.loaded_settings.settings.theme:
            return
        problem = save_setting("theme", name, self.loaded_settings.path)
        if problem:
            self.notify(problem, title="Settings", severity="warning", timeout=10)
        else:
            self.loaded_settings.settings.theme = name


def dismiss_or_exit(screen: Screen[Any], result: Any) -> None:
    """Dismiss the screen with its result; an app's first screen ends the app with it instead."""
    stack = screen.app.screen_stack
    if stack and stack[0] is screen:
        screen.app.exit(result)
    else:
        screen.dismiss(result)
