"""A form row is one widget until the cursor comes to it (issue 23: the editor's open and tab switches).

A row was a label widget beside its editor, and a select was five widgets (the select, its face,
the value, two arrows) besides its option list: the Training tab held ~240 widgets, each styled
when built and laid out when shown. Then the row drew its own label and the select its own face
(~150). Now a row also draws its value (faces.py) and makes its editor when the cursor first comes
to it: a tab is about one widget per row. These tests hold the count, that keys reach the editor
made for them, and that the drawn parts behave as the widgets did: the ● mark, the select's value
and arrow, opening and choosing with the keyboard.
"""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input, Select, Switch

from tests.config_editor.conftest import SIZE, editor, settled, wait_for
from tuitrain.tui.config_editor.app import ConfigEditorApp
from tuitrain.tui.config_editor.form_select import FormSelect, FormSelectCurrent
from tuitrain.tui.config_editor.tab_forms import TabForm
from tuitrain.tui.config_editor.widgets import LABEL_WIDTH, FieldRow


def line_of(row: FieldRow) -> str:
    """The row's first line as drawn: its label and, from column 26, its value (drawn, or its editor's)."""
    label = "".join(segment.text for segment in row.render_line(0))
    if not row.has_editor:
        return label
    shown = row.editor.query_one(FormSelectCurrent) if isinstance(row.editor, FormSelect) else row.editor
    editor = "".join(segment.text for segment in shown.render_line(0))
    return label[:LABEL_WIDTH].ljust(LABEL_WIDTH) + editor


async def test_a_row_is_one_widget_until_the_cursor_comes_to_it(run_config: Path) -> None:
    app = ConfigEditorApp(run_config)
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await wait_for(pilot, lambda: all(form.ready.is_set() for form in screen.query(TabForm)))
        training = screen.query_one("#tab-training", TabForm)
        rows = list(training.query(FieldRow))
        assert len(rows) > 40 and not any(row.has_editor for row in rows)
        assert all(not row.children for row in rows)
        assert len(list(training.walk_children())) < len(rows) * 1.3  # ~150 widgets before, ~240 before that
        await pilot.press("alt+3")
        await pilot.pause(0.3)
        made: dict[type, int] = {}
        for _ in range(30):  # the cursor goes from row to row; each row it reaches has its editor, focused
            row = next(node for node in screen.focused.ancestors_with_self if isinstance(node, FieldRow))
            assert row.has_editor and screen.focused is row.editor and not row.can_focus
            widgets = [w for w in row.walk_children() if "message" not in w.classes]
            assert len(widgets) == (3 if isinstance(row.editor, Select) else 1), (row.path, widgets)
            made[type(row.editor)] = made.get(type(row.editor), 0) + 1
            if {FormSelect, Switch} <= set(made) and any(issubclass(k, Input) for k in made):
                break
            await pilot.press("tab")
        assert {FormSelect, Switch} <= set(made) and any(issubclass(k, Input) for k in made), made
        assert sum(row.has_editor for row in rows) == sum(made.values())  # the rows visited, and no other


async def test_keys_typed_after_tab_land_in_the_editor_made_for_them(run_config: Path) -> None:
    app = ConfigEditorApp(run_config)
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await pilot.press("alt+5")  # Method: lora.type (a select), then text fields
        await pilot.pause(0.3)
        chain = screen.focus_chain
        after = chain[chain.index(screen.focused) + 1]  # the next row: still drawn, not an editor yet
        assert isinstance(after, FieldRow) and not after.has_editor and after.kind == "integer", after
        await pilot.press("tab", "ctrl+a", "ctrl+k", "4", "8")  # one burst: the editor is made by the tab key
        await settled(pilot, screen)
        assert screen.document.get(after.path) == 48
        assert screen.focused is after.editor
        await pilot.press("shift+tab")  # back to the select, which the row before keeps
        await pilot.pause()
        assert screen.focused is screen.row("lora.type").editor


async def test_a_click_on_a_drawn_value_acts_on_its_editor(run_config: Path) -> None:
    app = ConfigEditorApp(run_config)
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await pilot.press("alt+3")
        await pilot.pause(0.3)
        switch_row = next(row for row in screen.query("#tab-training FieldRow").results(FieldRow)
                          if row.kind == "switch" and row.region and not row.has_editor)
        before = bool(screen.document.get(switch_row.path))
        await pilot.click(switch_row, offset=(LABEL_WIDTH + 1, 0))
        await settled(pilot, screen)
        assert switch_row.has_editor and screen.document.get(switch_row.path) is (not before)
        select_row = next(row for row in screen.query("#tab-training FieldRow").results(FieldRow)
                          if row.kind == "select" and row.region and not row.has_editor)
        await pilot.click(select_row, offset=(LABEL_WIDTH + 2, 0))
        await pilot.pause(0.2)
        assert isinstance(select_row.editor, FormSelect) and select_row.editor.expanded


async def test_the_drawn_label_and_select_face_show_what_the_widgets_did(run_config: Path) -> None:
    app = ConfigEditorApp(run_config)
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await pilot.press("alt+4")  # Optimizer: name is a select
        await pilot.pause(0.3)
        row = screen.row("optimizer.name")
        line = line_of(row)  # the cursor is here: the row has its editor
        assert line.startswith("  name ") and "adamw" in line and line.rstrip().endswith("▼")
        select = row.editor
        assert isinstance(select, FormSelect)
        face = select.query_one(FormSelectCurrent)

        select.focus()
        await pilot.press("enter")  # opens the option list: the arrow turns
        await pilot.pause()
        assert select.expanded
        assert "▲" in "".join(s.text for s in face.render_line(0))
        options = list(select._options)
        target = next(value for _, value in options if value not in (select.value, Select.NULL))
        while select.query_one("SelectOverlay").highlighted is not None and \
                options[select.query_one("SelectOverlay").highlighted][1] != target:  # type: ignore[attr-defined]
            await pilot.press("down")
        await pilot.press("enter")
        await settled(pilot, screen)
        assert not select.expanded
        assert screen.document.get("optimizer.name") == target
        line = line_of(row)
        assert line.startswith("● name ") and str(target) in line  # the mark the label draws
        assert "".join(s.text for s in face.render_line(0)).rstrip().endswith("▼")

        await pilot.press("ctrl+r")  # back to the preset: the mark goes
        await settled(pilot, screen)
        assert line_of(row).startswith("  name ") and "adamw" in line_of(row)


async def test_a_name_longer_than_the_label_column_is_cut_with_an_ellipsis(run_config: Path) -> None:
    app = ConfigEditorApp(run_config)
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await wait_for(pilot, lambda: all(form.ready.is_set() for form in screen.query(TabForm)))
        long_rows = [row for row in screen.query(FieldRow) if len(row.option.name) > 23]
        assert long_rows  # e.g. schedulefree_warmup_steps: as a wrapped Label it showed no name at all
        row = long_rows[0]
        screen.query_one("#tabs").active = f"tab-{row.option.group}"  # type: ignore[attr-defined]
        await pilot.pause(0.3)
        label = line_of(row)[:26]
        assert label.rstrip().endswith("…") and row.option.name[:20] in label, label
