"""Snapshots of the review screen at 80x24 and 160x48, half-cells forced (same picture everywhere).

Update after an intended change with: pytest tests/tui/test_snapshots.py --snapshot-update
and look at the SVGs under tests/tui/__snapshots__/ before committing them.
"""

from __future__ import annotations

from pathlib import Path

from textual.pilot import Pilot

from tests.tui.conftest import full_report, make_dataset, review_app, settled, wait_until


def settle_on(name: str, *keys: str):  # type: ignore[no-untyped-def]
    """run_before for snap_compare: press keys, then wait for the picture and the full report."""

    async def run_before(pilot: Pilot[object]) -> None:
        screen = await settled(pilot, "a.bmp")
        await full_report(pilot, screen)
        await pilot.press(*keys)
        screen = await settled(pilot, name)
        await wait_until(pilot, lambda: (screen.last_result.request.crop_box is not None) == screen.show_bucket)  # type: ignore[union-attr]
        await pilot.pause()

    return run_before


def test_review_80x24(snap_compare, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The first image of the folder in the smallest terminal we support."""
    app = review_app(make_dataset(tmp_path / "faery-set"))
    assert snap_compare(app, terminal_size=(80, 24), run_before=settle_on("a.bmp"))


def test_review_160x48_with_bucket_crop(snap_compare, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A flagged image (duplicate) with its bucket crop shown: the cut-off sides are dimmed."""
    app = review_app(make_dataset(tmp_path / "faery-set"))
    assert snap_compare(app, terminal_size=(160, 48), run_before=settle_on("d.bmp", "end", "left", "b"))


def test_report_80x24(snap_compare, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The pre-flight report (r) in the smallest terminal: its 80-column lines re-wrapped at words to
    the box, indented as they were (not cut mid-phrase as in "(13 / bytes / not processed)"), and the
    footer's help key on screen."""
    folder = make_dataset(tmp_path / "faery-set")
    (folder / "an_unreadable_picture_with_a_rather_long_name.png").write_bytes(b"not a picture")  # 13 bytes
    app = review_app(folder)

    async def run_before(pilot: Pilot[object]) -> None:
        await settle_on("a.bmp")(pilot)
        await pilot.press("r")
        await wait_until(pilot, lambda: type(pilot.app.screen).__name__ == "ReportScreen")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
