"""The review's filter finds file names as well as captions, and a file the trainer cannot read keeps
its caption in view and editable (issue 23: `coffee` found nothing beside coffee.png; an unreadable
image said "caption: (none)" and `c` refused it)."""

from __future__ import annotations

from pathlib import Path

from tests.tui.conftest import picture, review_app, settled, wait_until


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "cafe"
    folder.mkdir()
    picture((64, 64), 1).save(folder / "a.png")
    (folder / "a.txt").write_text("a cup on a table\n")
    picture((64, 64), 2).save(folder / "coffee.png")
    (folder / "coffee.txt").write_text("a dark drink\n")
    (folder / "z-broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (folder / "z-broken.txt").write_text("steam over a mug\n")
    return folder


async def test_filter_matches_file_names_too(tmp_path: Path) -> None:
    app = review_app(_folder(tmp_path))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await settled(pilot, "a.png")
        await pilot.press("slash", *"coffee", "enter")
        assert [item.name for item in screen.model.visible] == ["coffee.png"]
        await pilot.press("slash")
        screen.query_one("#filter").value = "broken steam"  # type: ignore[attr-defined]
        await pilot.press("enter")  # a name word and a caption word together
        assert [item.name for item in screen.model.visible] == ["z-broken.png"]


async def test_an_unreadable_files_caption_is_shown_and_c_edits_it(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    app = review_app(folder)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await settled(pilot, "a.png")
        await pilot.press("end")
        await settled(pilot, "z-broken.png")
        caption = str(screen.query_one("#caption-text").render())
        assert "steam over a mug" in caption and "(none" not in caption
        await pilot.press("c")
        editor = screen.query_one("#caption-editor")
        assert editor.text == "steam over a mug"  # type: ignore[attr-defined]
        editor.text = "steam over a blue mug"  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: screen.model.current.caption == "steam over a blue mug")  # type: ignore[union-attr]
        assert "steam over a blue mug" in str(screen.query_one("#caption-text").render())
    assert (folder / "z-broken.txt").read_text() == "steam over a blue mug\n"
