"""A change of size costs one layout, not two (tuitrain/tui/layout_once.py; issue 23: tab switches).

Textual asked for a second full layout whenever any widget's size changed, because a widget's
virtual size is a reactive that lays out again. The first visit of the config editor's Training tab
took three full reflows (the rows, again for their virtual sizes, and again one column narrower
once the scrollbar appeared); it now takes the one that places the rows and a small one for the
form's own scrollbar. Only the tab forms opt in; elsewhere, and for any container that scrolls,
Textual's behaviour stays: a scrollbar still appears when content grows, and the children still
make room for it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.app import App, ComposeResult
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import Label

from tests.config_editor.conftest import SIZE, count_layouts, editor, wait_for
from tuitrain.tui import layout_once
from tuitrain.tui.config_editor.app import ConfigEditorApp
from tuitrain.tui.config_editor.tab_forms import TabForm


def test_the_pinned_textual_takes_the_change() -> None:
    assert layout_once.install() is True
    assert layout_once.install() is True  # once per process: a second call wraps nothing again
    assert getattr(Widget._size_updated, "_tuitrain_layout_once", False)


async def test_first_visit_of_a_tab_is_laid_out_once(run_config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = ConfigEditorApp(run_config)
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await wait_for(pilot, lambda: all(form.ready.is_set() for form in screen.query(TabForm)))
        await pilot.pause(0.3)
        form = screen.query_one("#tab-training", TabForm)
        assert not form.region  # never shown yet
        layouts = count_layouts(monkeypatch)
        await pilot.press("alt+3")
        await pilot.pause(0.5)
        assert form.region and form.show_vertical_scrollbar  # shown, and its rows overflow at this size
        rows = list(form.children)
        assert rows and all(row.region.right <= form.region.right - form.scrollbar_size_vertical for row in rows)
        # one reflow that places the rows, one for the form's scrollbar; Textual made three
        assert len(layouts) <= 2, f"{len(layouts)} full layouts for one tab switch"


class Growing(App[None]):
    CSS = "Label { width: 1fr; }"

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="scroll"):
            yield Label("row 0", id="first")


async def test_a_scrolling_container_still_gets_its_scrollbar() -> None:
    layout_once.install()
    app = Growing()
    async with app.run_test(size=(40, 10)) as pilot:
        scroll = app.query_one("#scroll", VerticalScroll)
        first = app.query_one("#first", Label)
        assert not scroll.show_vertical_scrollbar
        wide = first.region.width
        await scroll.mount_all(Label(f"row {n}") for n in range(1, 30))
        await pilot.pause(0.2)
        assert scroll.show_vertical_scrollbar
        assert scroll.max_scroll_y > 0  # its virtual size was taken in
        assert first.region.width == wide - scroll.scrollbar_size_vertical  # the rows made room for it


async def test_only_the_forms_rows_skip_the_second_layout(run_config: Path) -> None:
    app = ConfigEditorApp(run_config)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = editor(app)
        await wait_for(pilot, lambda: all(form.ready.is_set() for form in screen.query(TabForm)))
        row = screen.row("training.learning_rate")
        assert layout_once.cannot_scroll(row) and layout_once.inside_opted_container(row)
        status = screen.query_one("#status")  # outside the forms: Textual's way
        assert layout_once.cannot_scroll(status) and not layout_once.inside_opted_container(status)
        app.notify("a toast")
        await pilot.pause(0.2)
        toasts = list(app.screen.query("Toast"))
        assert toasts and not any(layout_once.inside_opted_container(toast) for toast in toasts)
        assert all(toast.region.height > 0 for toast in toasts)
