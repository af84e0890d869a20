"""The config editor's tabs, each composed when first needed.

Mounting the whole form (about 170 rows, 1,500 widgets) before the first frame cost
1.3-2 s on an idle 2-core machine, 3.3 s of CPU beside other work: most of it Textual
applying CSS to widgets in tabs nobody was looking at. So the screen composes the tab it
opens on, paints it, and then fills the other tabs one at a time (FormBuilder, a hidden
widget: the building runs from its message queue, so the screen's own queue stays free to
paint and to answer keys, and Pilot's pause() waits for the building as it waits for any
widget's messages). A tab asked for before its turn (alt+n, ctrl+pagedown) is built at once
and the key waits for it, so keys typed after the tab key land in its fields.

Values live in the ConfigDocument, never only in widgets: a row built late shows the
document's value, and saving writes the document, so every field is saved whether or not
its tab was ever shown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.compose import compose
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widget import Widget


class FormScroll(VerticalScroll, inherit_bindings=False):
    """A tab's scrolling form, without the horizontal paging keys (ctrl+pageup/pagedown):
    the form never scrolls sideways and those keys switch tabs."""

    BINDINGS = [b for b in VerticalScroll.BINDINGS
                if not (isinstance(b, Binding) and b.key in ("ctrl+pageup", "ctrl+pagedown"))]


class TabForm(FormScroll):
    """One tab's form: its rows once built, empty before (never shown so: show_pane builds a tab first; a
    placeholder line in each tab not built was 6 of the widgets styled for the editor's first frame).

    The scrollbar's column is kept whether or not the rows overflow: otherwise a tab's first
    showing laid its rows out at full width, found they overflow, showed the scrollbar and laid
    every row out again one column narrower (a second full reflow, ~80 ms on the Training tab).
    """

    DEFAULT_CSS = "TabForm { scrollbar-gutter: stable; }"
    LAYOUT_ONCE_INSIDE = True  # its rows take a new size in one layout, not two (tui/layout_once.py)

    def __init__(self, group: str, rows: Callable[[str], ComposeResult], *, built: bool) -> None:
        super().__init__(id=f"tab-{group}")
        self.group = group
        self._rows = rows
        self.built = built  # compose yields the rows (set before the recompose that mounts them)
        self.ready = asyncio.Event()  # the rows are mounted
        if built:
            self.ready.set()  # composed with the screen: mounted before the screen's on_mount runs
        self._building = False

    def compose(self) -> ComposeResult:
        if self.built:
            yield from self._rows(self.group)

    async def build(self) -> bool:
        """Mount the rows (once; a second caller waits for the first). True when this call built them."""
        if self.ready.is_set():
            return False
        if self._building:
            await self.ready.wait()
            return False
        self._building = True
        self.built = True
        try:
            # Not recompose(): it holds the whole app's painting (a batch) until every row is mounted,
            # so the first frame waited for all the tabs. Mounted this way, frames go on between rows.
            if self.is_attached:
                await self.mount_all(compose(self))
        finally:
            self.ready.set()
        return True


class BuildForm(Message):
    """Fill the tabs that are not built yet, once the screen has painted its first tab."""


class FormBuilder(Widget):
    """Builds the tabs not built yet, after the first frame: the one a key asked for, else the next in order."""

    DEFAULT_CSS = "FormBuilder { display: none; }"
    FIRST_FRAME_WAIT = 1.0  # seconds at most to wait for the screen's first paint

    def __init__(self, forms: Callable[[], Iterable[TabForm]], built: Callable[[TabForm], object],
                 first: Callable[[], Awaitable[None]] | None = None) -> None:
        super().__init__()
        self._forms = forms
        self._built = built  # called after a tab's rows are mounted (the screen shows their state)
        self._first = first  # run once the first frame is painted, before any tab is built
        self.wanted: str | None = None
        self._painted = asyncio.Event()

    def start(self) -> None:
        """Build the other tabs once the screen has been painted (called from the screen's on_mount)."""
        self._painted.clear()
        self.screen.call_after_refresh(self._painted.set)
        self.post_message(BuildForm())

    @on(BuildForm)
    async def _build_form(self, message: BuildForm) -> None:
        message.stop()
        try:
            await asyncio.wait_for(self._painted.wait(), self.FIRST_FRAME_WAIT)
        except TimeoutError:
            pass  # build anyway: the tabs must not wait for a paint that is not coming
        if self._first is not None:
            await self._first()
        await self.build_rest()

    async def build(self, form: TabForm) -> None:
        if await form.build() and form.is_attached:
            self._built(form)

    async def build_rest(self) -> None:
        """Build every tab, the wanted one first; between tabs, keys and paints get their turn."""
        while True:
            pending = [form for form in self._forms() if not form.built]
            if not pending:
                return
            form = next((f for f in pending if f.group == self.wanted), pending[0])
            await self.build(form)
            await asyncio.sleep(0)


def built_forms(forms: Iterable[TabForm]) -> list[TabForm]:
    """The forms whose rows are mounted (rows of a tab being built are not ready to be used)."""
    return [form for form in forms if form.ready.is_set()]
