"""The config editor's tabs: one strip of titles over a switcher of forms.

Textual's TabbedContent gives each tab three widgets (a ContentTab, a TabPane and the
form in it) and itself seven more (ContentTabs, its scroll, list and bar containers, the
Underline, the switcher): 28 of the 73 widgets the editor mounted before its first frame,
and Textual styles, composes, lays out and renders each one (~1 ms a widget on the 2-core
machine). Here the strip is one widget that draws every title and the bar under them, and
each form is the switcher's child itself: 10 widgets. The strip looks as Textual 8.2.8's
tabs do, cell for cell (the titles at half brightness, the active one in full with the bar
under it, the block cursor on it while the strip has the focus), without the bar's 0.3 s
slide, which drew 15-18 frames after every switch, each one more write over SSH.
"""

from __future__ import annotations

from rich.console import Group
from rich.style import Style
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.renderables.bar import Bar
from textual.widget import Widget
from textual.widgets import ContentSwitcher

PAD = 1  # cells either side of a title (Textual's Tab: padding 0 1)


class TabStrip(Widget, can_focus=True):
    """The titles, and the bar under the active one. Left and right step through them when it has the focus."""

    COMPONENT_CLASSES = {"tab-strip--title", "tab-strip--active", "tab-strip--cursor", "tab-strip--bar",
                         "tab-strip--bar-focused"}
    DEFAULT_CSS = """
    TabStrip {
        width: 1fr;
        height: 2;
        pointer: pointer;
        & > .tab-strip--title { color: $foreground 50%; }
        & > .tab-strip--active { color: $foreground; }
        & > .tab-strip--cursor {
            text-style: $block-cursor-text-style;
            color: $block-cursor-foreground;
            background: $block-cursor-background;
        }
        & > .tab-strip--bar { color: $block-cursor-background; background: $foreground 10%; }
        & > .tab-strip--bar-focused { color: $block-cursor-background; background: $foreground 30%; }
        &:ansi {
            & > .tab-strip--title { text-style: dim; }
            & > .tab-strip--active { text-style: not dim bold; }
            & > .tab-strip--bar { background: $border-blurred; }
        }
    }
    """
    BINDINGS = [
        Binding("left", "step(-1)", "Previous tab", show=False),
        Binding("right", "step(1)", "Next tab", show=False),
    ]

    class Chosen(Message):
        """A title was clicked, or left/right pressed on the strip: the screen shows that tab."""

        def __init__(self, pane_id: str | None, step: int = 0) -> None:
            super().__init__()
            self.pane_id = pane_id  # None: `step` tabs on from the active one
            self.step = step

    def __init__(self, titles: list[tuple[str, str]], active: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.titles = titles  # (pane id, title)
        self.active = active
        self._hover: str | None = None

    def spans(self) -> list[tuple[str, int, int]]:
        """Each tab's pane id and the columns its title's text covers (start, end)."""
        out, x = [], 0
        for pane_id, title in self.titles:
            out.append((pane_id, x + PAD, x + PAD + len(title)))
            x += len(title) + 2 * PAD
        return out

    def render(self) -> Group:
        title, hover = self.get_component_rich_style("tab-strip--title"), self.get_component_rich_style(
            "tab-strip--active")  # a title under the mouse is drawn as the active one (Tab:hover, Tab.-active)
        active = self.get_component_rich_style("tab-strip--cursor") if self.has_focus else hover
        line = Text(no_wrap=True, overflow="crop")
        for pane_id, text in self.titles:
            style = active if pane_id == self.active else hover if pane_id == self._hover else title
            pad = Style(bgcolor=style.bgcolor)  # padding takes the background only, as a Tab's does
            line.append(" " * PAD, pad)
            line.append(text, style)
            line.append(" " * PAD, pad)
        bar = self.get_component_rich_style("tab-strip--bar-focused" if self.has_focus else "tab-strip--bar")
        start, end = next(((s, e) for pane_id, s, e in self.spans() if pane_id == self.active), (0, 0))
        return Group(line, Bar((start, end), Style.from_color(bar.color), Style.from_color(bar.bgcolor)))

    def pane_at(self, x: int) -> str | None:
        return next((pane_id for pane_id, start, end in self.spans() if start - PAD <= x < end + PAD), None)

    def on_click(self, event: events.Click) -> None:
        event.stop()
        pane_id = self.pane_at(event.x)
        if pane_id is not None:
            self.post_message(self.Chosen(pane_id))

    def on_mouse_move(self, event: events.MouseMove) -> None:
        self._set_hover(self.pane_at(event.x))

    def on_leave(self, _event: events.Leave) -> None:
        self._set_hover(None)

    def _set_hover(self, pane_id: str | None) -> None:
        if pane_id != self._hover:
            self._hover = pane_id
            self.refresh()

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    def action_step(self, step: int) -> None:
        self.post_message(self.Chosen(None, step))


class FormTabs(Vertical):
    """The strip over the forms; `active` is the id of the form shown, as TabbedContent's is."""

    DEFAULT_CSS = """
    FormTabs { height: auto; }
    FormTabs > TabStrip { dock: top; }
    FormTabs > ContentSwitcher { height: auto; }
    """

    def __init__(self, panes: list[tuple[str, Widget]], *, id: str | None = None) -> None:
        """`panes`: each form with the title its tab shows; a form's id is its tab's."""
        super().__init__(id=id)
        self._panes = panes
        first = panes[0][1].id if panes else None
        self._strip = TabStrip([(str(form.id), title) for title, form in panes], first or "")
        self._switcher = ContentSwitcher(initial=first)

    def compose(self) -> ComposeResult:
        yield self._strip
        with self._switcher:
            for _title, form in self._panes:
                yield form

    @property
    def active(self) -> str:
        return self._switcher.current or ""

    @active.setter
    def active(self, pane_id: str) -> None:
        self._switcher.current = pane_id
        self._strip.active = pane_id
        self._strip.refresh()

    @property
    def pane_ids(self) -> list[str]:
        return [pane_id for pane_id, _title in self._strip.titles]
