"""A row draws its value cell for cell as its editor does (tuitrain/tui/config_editor/faces.py).

Until the cursor comes to a row, the row draws the value itself; then the real Input, Select or
Switch takes its place. The user must not see the swap: every row of every tab is compared as
the screen shows it before and after its editor is made, characters and colours, so a Textual
that draws its widgets differently fails here.
"""

from __future__ import annotations

from pathlib import Path

from textual.geometry import Region
from textual.screen import Screen

from tests.config_editor.conftest import SIZE, editor, settled, wait_for
from tuitrain.tui.config_editor.app import ConfigEditorApp
from tuitrain.tui.config_editor.tab_forms import TabForm
from tuitrain.tui.config_editor.widgets import LABEL_WIDTH, FieldRow

Cell = tuple[str, object, object, bool]


def cells(screen: Screen[object], region: Region) -> list[Cell]:
    """The screen's cells in a region: character, colour (of visible characters only), background, bold."""
    strips = screen._compositor.render_strips()
    found: list[Cell] = []
    for y in range(region.y, region.bottom):
        for segment in strips[y].crop(region.x, region.right):
            style = segment.style
            for character in segment.text:
                colour = style.color if style is not None and character != " " else None
                found.append((character, colour, style.bgcolor if style else None, bool(style and style.bold)))
    return found


async def test_every_drawn_value_looks_as_its_editor_does(run_config: Path) -> None:
    app = ConfigEditorApp(run_config)
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await wait_for(pilot, lambda: all(form.ready.is_set() for form in screen.query(TabForm)))
        compared: dict[str, int] = {}
        for number in range(1, len(screen.groups) + 1):
            await pilot.press(f"alt+{number}")
            await pilot.pause(0.3)
            form = screen.query_one(f"#tab-{screen.groups[number - 1]}", TabForm)
            rows = [row for row in form.query(FieldRow) if not row.has_editor and row.region
                    and form.region.contains_region(row.region)]
            drawn = {row.path: (row.region, cells(screen, row.region)) for row in rows}
            for row in rows:
                await row.open_editor()  # made and mounted, the cursor left where it is
            await pilot.pause(0.3)
            for row in rows:
                region, before = drawn[row.path]
                assert row.region == region, row.path
                assert cells(screen, region) == before, f"{row.path} ({row.kind}) looks different with its editor"
                compared[row.kind] = compared.get(row.kind, 0) + 1
        # every kind of editor was compared, with rows enough to include values and empty ones
        assert {"select", "switch", "integer", "number", "text", "path"} <= set(compared), compared
        assert sum(compared.values()) > 100, compared


def label_colour(screen: Screen[object], row: FieldRow) -> object:
    """The colour of the row's name on screen (the name starts after the two columns of the ● mark)."""
    return next(colour for _, colour, _, _ in cells(screen, row.region.crop_size((LABEL_WIDTH, 1))) if colour)


async def test_names_are_muted_in_the_sections_the_training_method_does_not_use(run_config: Path) -> None:
    app = ConfigEditorApp(run_config)
    async with app.run_test(size=(120, 90)) as pilot:  # tall: the [lora] and [embedding] rows on screen at once
        screen = editor(app)
        await screen.show_pane("tab-lora")
        await pilot.pause()
        token = screen.row("embedding.token")
        lora_row = next(row for row in screen.query_one("#sec-lora-lora").query_children(FieldRow)
                        if not row.has_class("changed"))
        assert not token.has_class("changed") and token.region.bottom < 90 and lora_row.region.bottom < 90
        muted, full = label_colour(screen, token), label_colour(screen, lora_row)
        assert muted != full
        (await screen.row("training.method").open_editor()).value = "embedding"
        await settled(pilot, screen)
        assert (label_colour(screen, token), label_colour(screen, lora_row)) == (full, muted)
