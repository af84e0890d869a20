"""At 80x24 every key the footer shows is on screen, and the help key is one of them (tui/footer.py)."""

from __future__ import annotations

from pathlib import Path

from textual.app import App
from textual.widgets._footer import FooterKey

from tests.tui.conftest import make_dataset, review_app, settled
from tuitrain.tui.footer import is_help_action


def footer_keys(app: App[object]) -> list[FooterKey]:
    return list(app.screen.query(FooterKey))


def assert_footer_fits(app: App[object]) -> None:
    keys = footer_keys(app)
    assert keys, "no footer keys"
    width = app.size.width
    cut = [f"{key.key_display} {key.description}" for key in keys if key.region.right > width or key.region.width == 0]
    assert not cut, f"cut off at {width} columns: {cut}"
    assert any(is_help_action(key.action) for key in keys), "no help key in the footer"


async def test_review_and_its_report_show_every_footer_key(tmp_path: Path) -> None:
    app = review_app(make_dataset(tmp_path / "faery-set"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settled(pilot)
        await pilot.pause()
        assert_footer_fits(app)
        await pilot.resize_terminal(160, 48)
        await pilot.pause()
        assert any(key.action == "command_palette" for key in footer_keys(app))  # wide: the palette key is back
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        assert_footer_fits(app)



async def test_home_shows_every_footer_key(tmp_path: Path) -> None:
    """The home screen's keys, t among them, fit at 80 columns (with Textual's footer, ? Help was cut off)."""
    from tuitrain.tui.app import HomeScreen, TuitrainApp

    app = TuitrainApp(tmp_path / "runs", image_protocol="halfcell")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, HomeScreen)
        assert_footer_fits(app)
        assert "train" in {key.action for key in footer_keys(app)}
        regions = sorted((key.region.x, key.region.right) for key in footer_keys(app))
        assert all(right <= left for (_, right), (left, _) in zip(regions, regions[1:])), f"keys overlap: {regions}"
