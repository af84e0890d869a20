"""The editor's tab strip (form_tabs.py): one widget for every title, working as Textual's tabs did.

TabbedContent was 28 of the 73 widgets mounted before the editor's first frame (issue 23: opening the
editor from the runs screen took 126-175 ms against a goal of 100). The strip draws the same cells
(checked cell by cell on every tab at 120x40 and 80x24 against TabbedContent); these tests hold the count
and what the user does with it: click a title, step with left and right, see which tab is shown.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.config_editor.conftest import SIZE, editor, wait_for
from tuitrain.tui.config_editor.app import ConfigEditorApp
from tuitrain.tui.config_editor.form_tabs import FormTabs, TabStrip
from tuitrain.tui.config_editor.screen import ConfigEditorScreen
from tuitrain.tui.config_editor.tab_forms import TabForm
from tuitrain.tui.config_editor.widgets import FieldRow


def strip_text(strip: TabStrip) -> list[str]:
    return ["".join(segment.text for segment in strip.render_line(y)) for y in (0, 1)]


async def test_the_editor_opens_with_few_widgets_and_one_for_all_the_titles(run_config: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    mounted: list[int] = []
    on_mount = ConfigEditorScreen.on_mount

    def counting(self: ConfigEditorScreen) -> None:
        mounted.append(len(list(self.walk_children())))  # what the first frame styles, lays out and draws
        on_mount(self)

    monkeypatch.setattr(ConfigEditorScreen, "on_mount", counting)
    app = ConfigEditorApp(run_config)
    async with app.run_test(size=SIZE):
        screen = editor(app)
        strip = screen.query_one(TabStrip)
        titles, bar = strip_text(strip)
        assert titles.startswith(" 1 Model  2 Data  3 Training  4 Optimizer  5 Method  6 Sampling  7 Saving ")
        assert bar.startswith("╸━━━━━━━╺━")  # the bar's highlight under "1 Model", as Textual's Underline
        tabs = screen.query_one("#tabs", FormTabs)
        assert len(list(tabs.walk_children())) == 2 + len(screen.groups) + sum(
            len(list(form.walk_children())) for form in tabs.query(TabForm))  # strip, switcher, the forms
        print("widgets before the first frame:", mounted)
        assert mounted == [mounted[0]] and mounted[0] <= 50  # 73 with TabbedContent and a placeholder per tab


async def test_a_click_on_a_title_shows_its_tab_built_with_the_cursor_in_it(run_config: Path) -> None:
    app = ConfigEditorApp(run_config)
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        strip = screen.query_one(TabStrip)
        tabs = screen.query_one("#tabs", FormTabs)
        pane_id, start, _end = strip.spans()[6]  # 7 Saving, the last to be built
        assert await pilot.click(TabStrip, offset=(start + 2, 0))
        await wait_for(pilot, lambda: tabs.active == pane_id and screen.focused not in (None, strip))
        form = screen.query_one(f"#{pane_id}", TabForm)
        assert form.built and form.query(FieldRow)
        assert screen.focused in list(form.walk_children())
        assert strip_text(strip)[1][start - 1:start + 1] == "╸━"  # the bar moved under it
        assert await pilot.click(TabStrip, offset=(strip.spans()[1][1], 1))  # the bar's line takes clicks too
        await wait_for(pilot, lambda: tabs.active == strip.spans()[1][0])


async def test_left_and_right_on_the_focused_strip_step_through_the_tabs(run_config: Path) -> None:
    app = ConfigEditorApp(run_config)
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        strip = screen.query_one(TabStrip)
        tabs = screen.query_one("#tabs", FormTabs)
        strip.focus()
        await pilot.pause()
        await pilot.press("left")  # wraps to the last tab, built; the cursor stays to go on browsing
        await wait_for(pilot, lambda: tabs.active == tabs.pane_ids[-1])
        assert strip.has_focus and screen.query_one(f"#{tabs.pane_ids[-1]}", TabForm).query(FieldRow)
        await pilot.press("right", "right")
        await wait_for(pilot, lambda: tabs.active == tabs.pane_ids[1])
        assert strip.has_focus
        await pilot.press("tab")  # into the tab shown
        form = screen.query_one(f"#{tabs.pane_ids[1]}", TabForm)
        await wait_for(pilot, lambda: screen.focused is not None and form in screen.focused.ancestors_with_self)
