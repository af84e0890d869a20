"""The review screen on files the pre-flight refuses: it starts, shows why, and moves on.

A 0x0 WMF named .png used to crash the screen at start (ZeroDivisionError in
nearest_bucket, then exit 0); a 1x50,000 strip was only "upscaled".
"""

from __future__ import annotations

from pathlib import Path

from tests.dataset import badfiles as bad
from tests.tui.conftest import full_report, picture, review_app, settled


async def test_zero_sized_and_extreme_images_are_shown_with_the_reason(tmp_path: Path) -> None:
    folder = tmp_path / "odd"
    folder.mkdir()
    picture((64, 64), 1).save(folder / "a.png")
    (folder / "a.txt").write_text("a picture\n")
    bad.wmf_zero_size(folder / "b-zero.png")
    bad.strip_png(folder / "c-strip.png", 1, 50_000)
    app = review_app(folder)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await settled(pilot, "a.png")
        await full_report(pilot, screen)
        said = {}
        for name in ("b-zero.png", "c-strip.png"):
            await pilot.press("right")
            await settled(pilot, name)
            said[name] = " ".join(str(screen.query_one("#info-text").render()).split())
        assert app.screen is screen and app.return_code is None  # still running
    assert "unsupported format: the file holds a Windows metafile (WMF)" in said["b-zero.png"]
    assert "aspect ratio 50,000:1 (1x50000) is beyond what bucketing allows" in said["c-strip.png"]
    assert "upscaled" not in said["c-strip.png"]  # it does not train, so it is not "too small" either
