"""A form row is its editor and little else (issue 23: the editor's open and tab switches).

A row was a label widget beside its editor, and a select was five widgets (the select, its face,
the value, two arrows) besides its option list: the Training tab held ~240 widgets, each styled
when built and laid out when shown. The row now draws its own label and the select its own face.
These tests hold the count, and that the drawn parts behave as the widgets did: the ● mark, the
select's value and arrow, opening and choosing with the keyboard.
"""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input, Select, Switch

from tests.config_editor.conftest import SIZE, editor, settled, wait_for
from tuitrain.tui.config_editor.app import ConfigEditorApp
from tuitrain.tui.config_editor.form_select import FormSelect, FormSelectCurrent
from tuitrain.tui.config_editor.tab_forms import TabForm
from tuitrain.tui.config_editor.widgets import FieldRow


def line_of(row: FieldRow) -> str:
    """The row's first line as drawn: its label and, from column 26, its editor."""
    label = "".join(segment.text for segment in row.render_line(0))
    shown = row.editor.query_one(FormSelectCurrent) if isinstance(row.editor, FormSelect) else row.editor
    editor = "".join(segment.text for segment in shown.render_line(0))
    return label[:26].ljust(26) + editor


async def test_a_row_is_its_editor_and_a_select_three_widgets(run_config: Path) -> None:
    app = ConfigEditorApp(run_config)
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await wait_for(pilot, lambda: all(form.ready.is_set() for form in screen.query(TabForm)))
        kinds: dict[type, int] = {}
        for row in screen.query(FieldRow):
            widgets = [w for w in row.walk_children() if "message" not in w.classes]
            editor_type = type(row.editor)
            kinds[editor_type] = kinds.get(editor_type, 0) + 1
            # the editor; a select also its face and its (hidden) option list
            assert len(widgets) == (3 if isinstance(row.editor, Select) else 1), (row.path, widgets)
        assert {FormSelect, Switch} <= set(kinds) and any(issubclass(k, Input) for k in kinds)


async def test_the_drawn_label_and_select_face_show_what_the_widgets_did(run_config: Path) -> None:
    app = ConfigEditorApp(run_config)
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await pilot.press("alt+4")  # Optimizer: name is a select
        await pilot.pause(0.3)
        row = screen.row("optimizer.name")
        select = row.editor
        assert isinstance(select, FormSelect)
        face = select.query_one(FormSelectCurrent)
        line = line_of(row)
        assert line.startswith("  name ") and "adamw" in line
        assert "".join(s.text for s in face.render_line(0)).rstrip().endswith("▼")

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
