"""The footer of tuitrain's screens: at 80 columns its help key stays on screen.

Textual's footer lays the keys out left to right and cuts off what does not fit, which
at 80x24 was the last key: `? Help`, the one that lists all the others. Below
NARROW_COLUMNS the footer goes compact, leaves out the command-palette key (ctrl+p still
opens it) and docks the help key on the right, where the palette key was: whatever else
is cut off, the key that shows it is there. A screen may also name shorter labels for its
keys there (NARROW_LABELS, by action), so that all of them fit in 80 columns; the help
screen and the command palette keep the full descriptions.
"""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

from tuitrain.tui.before_mount import set_before_mount

NARROW_COLUMNS = 100  # below this width the footer is narrow (80x24 is the smallest terminal we support)


def is_help_action(action: str) -> bool:
    """The help overlay's action, bound on the app ('help') or by a screen ('app.help')."""
    return action.rpartition(".")[2] == "help"


class ScreenFooter(Footer):
    """Footer that keeps the help key visible in narrow terminals."""

    DEFAULT_CSS = """
    ScreenFooter.-narrow FooterKey.-help-key { dock: right; margin: 0; padding-left: 1; }
    """

    _composed: object = None  # what the keys shown were made from (see bindings_changed)

    def _key_signature(self) -> object:
        """Everything the footer's keys show: the width class and each shown binding's key, label and state.
        A set: Textual orders the bindings by the focused widget's chain, so the same keys came in another
        order as the cursor moved between a select and a text field, and the footer's keys jumped about."""
        shown = frozenset((b.key, b.action, b.description, b.key_display, enabled, tooltip)
                          for (_, b, enabled, tooltip) in self.screen.active_bindings.values() if b.show)
        return self.has_class("-narrow"), self.show_command_palette, shown

    def bindings_changed(self, screen: Screen) -> None:
        """Recompose only when the keys shown change. Textual recomposes the footer whenever the
        focus moves; in the config editor every tab switch and Tab key moved it, and rebuilding
        the same ten keys cost 5-15 ms each time (cProfile of bench/config_editor_typing.py)."""
        if self._bindings_ready and self.is_attached and screen is self.screen and self._key_signature() == self._composed:
            return
        super().bindings_changed(screen)

    def compose(self) -> ComposeResult:
        if self._bindings_ready:
            self._composed = self._key_signature()
        narrow = self.has_class("-narrow")
        labels: dict[str, str] = getattr(self.screen, "NARROW_LABELS", {}) if narrow else {}
        for widget in super().compose():
            if isinstance(widget, FooterKey):
                if "compact" in (getattr(widget, "_reactive_connect", None) or {}):  # bound by Footer.compose
                    # The value its binding to the footer's `compact` will bring, before the key is mounted:
                    # a FooterKey starts compact and toggled its class at mount (a stylesheet pass on a key
                    # not yet mounted), then again when the binding arrived (tui/before_mount.py).
                    # (The palette key is not bound: it stays compact, as Textual draws it.)
                    set_before_mount(widget, FooterKey.compact, self.compact, "-compact")
                if narrow:
                    widget.description = labels.get(widget.action, widget.description)
                    if is_help_action(widget.action):
                        widget.add_class("-help-key", update=False)
            yield widget

    def on_resize(self, event: events.Resize) -> None:
        self._fit(event.size.width)

    def on_mount(self) -> None:
        self._fit(self.app.size.width)

    def _fit(self, width: int) -> None:
        narrow = width < NARROW_COLUMNS
        if narrow == self.has_class("-narrow") and self.compact == narrow:
            return
        self.set_class(narrow, "-narrow")
        self.compact = narrow
        self.show_command_palette = not narrow
        self.refresh(recompose=True)
