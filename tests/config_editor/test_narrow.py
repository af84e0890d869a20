"""The config editor at 80x24: every tab's title and every footer key on screen, help under the form."""

from __future__ import annotations

from pathlib import Path

from tests.tui.test_footer_80x24 import assert_footer_fits
from tuitrain.tui.config_editor.app import ConfigEditorApp
from tuitrain.tui.config_editor.form_tabs import TabStrip
from tuitrain.tui.config_editor.screen import ConfigEditorScreen


async def test_every_tab_and_footer_key_shows_at_80x24(run_config: Path) -> None:
    app = ConfigEditorApp(run_config)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ConfigEditorScreen)
        strip = screen.query_one(TabStrip)
        assert len(strip.titles) == len(screen.groups) >= 7
        right = min(80, strip.region.right)
        cut = [title for (_, title), (_, _, end) in zip(strip.titles, strip.spans()) if strip.region.x + end > right]
        assert not cut, f"tabs cut off at 80 columns: {cut}"
        assert_footer_fits(app)
        help_panel = screen.query_one("#help")
        assert help_panel.region.height > 0 and help_panel.region.y > screen.query_one("#tabs").region.y
        await pilot.press("alt+7")  # the last tab, hidden before: reachable and its first field focused
        await pilot.pause()
        assert screen.query_one("#tabs").active == f"tab-{screen.groups[6]}"  # type: ignore[attr-defined]
        await pilot.resize_terminal(160, 48)
        await pilot.pause()
        assert not screen.has_class("-narrow")  # wide again: the side panel back beside the form
