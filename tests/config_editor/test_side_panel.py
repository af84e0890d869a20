"""Moving from field to field redraws the help panel alone (issue 23: the editor's speed).

The help panel took the height of its text, so every move to a field whose help is longer or
shorter re-laid-out the whole screen (90 ms on the Training tab of a 2-core machine) and moved
the derived values (effective batch, VRAM, learning rate) up and down under it. The help now fills
the side panel above the derived values, which stay put.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Static

from tests.config_editor.conftest import SIZE, count_layouts, editor
from tuitrain.tui.config_editor.app import ConfigEditorApp


async def test_moving_between_fields_redraws_the_help_without_a_layout(run_config: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    app = ConfigEditorApp(run_config)
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await pilot.press("alt+3")  # Training: many fields, helps of many lengths
        await pilot.pause(0.3)
        help_panel = screen.query_one("#help", Static)
        derived = screen.query_one("#derived", Static)
        where = derived.region
        helps: set[int] = set()
        for _ in range(8):  # the first visit of a row makes its editor, which is laid out (test_light_rows.py)
            await pilot.press("tab")
        await pilot.pause()
        await pilot.press(*["shift+tab"] * 8)
        await pilot.pause()
        layouts = count_layouts(monkeypatch)
        for _ in range(8):
            await pilot.press("tab")
            await pilot.pause()
            helps.add(help_panel.get_content_height(help_panel.size, app.size, help_panel.size.width))  # lines drawn
            assert derived.region == where  # the derived values stay where they are
        assert len(helps) > 1, "the fields visited should have helps of different lengths"
        assert layouts == []  # each move redrew the help panel, and nothing was laid out again
