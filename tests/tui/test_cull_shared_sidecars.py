"""Culling one of two images with one stem (a.bmp + a.png share a.txt) through the review screen and
`tuitrain cull`: the caption the other image still uses is never trashed, so --empty-trash cannot delete it."""

from __future__ import annotations

from pathlib import Path

from tests.tui.conftest import picture, review_app, settled, tuitrain, wait_until


def shared_stem_folder(folder: Path) -> Path:
    folder.mkdir(parents=True)
    picture((96, 64), 1).save(folder / "a.bmp", "BMP")
    picture((64, 96), 2).save(folder / "a.png", "PNG")
    (folder / "a.txt").write_text("a red fox in the snow\n")
    picture((80, 80), 3).save(folder / "b.bmp", "BMP")
    return folder


async def test_cull_in_the_review_keeps_a_caption_another_image_uses(tmp_path: Path) -> None:
    folder = shared_stem_folder(tmp_path / "set")
    app = review_app(folder)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await settled(pilot, "a.bmp")
        await pilot.press("delete")
        await wait_until(pilot, lambda: not (folder / "a.bmp").exists())
        assert (folder / "a.txt").exists()  # a.png still uses it
        await settled(pilot, "a.png")
        assert screen.model.current is not None and screen.model.current.info is not None
        assert screen.model.current.info.caption == "a red fox in the snow"  # a.png keeps its caption

    listing = tuitrain("cull", str(folder), "--list-trash")
    assert "a.bmp  (kept in place, another image uses it: a.txt)" in listing.stdout
    emptied = tuitrain("cull", str(folder), "--empty-trash", "--yes")
    assert emptied.returncode == 0 and "Deleted 1 file(s)" in emptied.stdout
    assert (folder / "a.txt").read_text() == "a red fox in the snow\n"
    assert sorted(p.name for p in folder.iterdir()) == ["a.png", "a.txt", "b.bmp"]
