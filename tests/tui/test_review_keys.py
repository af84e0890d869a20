"""Every key of the review screen, driven with Pilot, checked against the files on disk."""

from __future__ import annotations

import gc
import hashlib
from pathlib import Path

from tests.tui.conftest import full_report, review_app, settled, shown, wait_until
from tuitrain.tui.help import HelpScreen
from tuitrain.tui.review.report import ReportScreen
from tuitrain.tui.review.screen import ReviewScreen

ORDER = ["a.bmp", "b.bmp", "broken.jpg", "c.bmp", "d.bmp", "e.bmp"]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot_of(folder: Path) -> dict[str, str]:
    """Every file under folder (trash included) with its content hash."""
    return {p.relative_to(folder).as_posix(): digest(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def trash_files(folder: Path) -> list[str]:
    trash = folder / ".tuitrain-trash" / "files"
    return sorted(p.name for p in trash.rglob("*") if p.is_file()) if trash.exists() else []


# (key, file shown after it), walked in order from a.bmp
WALK = [
    ("right", "b.bmp"),
    ("n", "broken.jpg"),
    ("space", "c.bmp"),
    ("left", "broken.jpg"),
    ("p", "b.bmp"),
    ("backspace", "a.bmp"),
    ("left", "a.bmp"),  # already first: stays
    ("end", "e.bmp"),
    ("right", "e.bmp"),  # already last: stays
    ("home", "a.bmp"),
    ("pagedown", "e.bmp"),  # 10 ahead, clamped
    ("pageup", "a.bmp"),
]


async def test_navigation_keys(dataset: Path) -> None:
    app = review_app(dataset)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await settled(pilot, "a.bmp")
        assert [item.name for item in screen.model.visible] == ORDER
        for key, expected in WALK:
            await pilot.press(key)
            await settled(pilot, expected)
            assert screen.model.current is not None and screen.model.current.name == expected, key
            title = str(screen.query_one("#titlebar").render())
            assert f"{ORDER.index(expected) + 1}/6" in title, key
            assert screen.query_one("#files").highlighted == ORDER.index(expected), key  # type: ignore[attr-defined]


async def test_unreadable_file_shows_why_instead_of_a_picture(dataset: Path) -> None:
    app = review_app(dataset)
    async with app.run_test(size=(100, 30)) as pilot:
        await settled(pilot, "a.bmp")
        await pilot.press("right", "right")
        screen = await settled(pilot, "broken.jpg")
        message = str(screen.query_one("#preview-message").render())
        assert "cannot show this file" in message
        info = str(screen.query_one("#info-text").render())
        assert "unreadable" in info


async def test_delete_culls_with_caption_and_undo_restores_byte_identical(dataset: Path) -> None:
    before = snapshot_of(dataset)
    app = review_app(dataset)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await settled(pilot, "a.bmp")
        await pilot.press("delete")
        await settled(pilot, "b.bmp")
        assert not (dataset / "a.bmp").exists() and not (dataset / "a.txt").exists()
        assert trash_files(dataset) == ["a.bmp", "a.txt"]
        assert screen.model.culled == 1 and len(screen.model.visible) == 5
        assert "1 culled" in str(screen.query_one("#titlebar").render())

        await pilot.press("delete")  # b and its caption too
        await settled(pilot, "broken.jpg")
        assert trash_files(dataset) == ["a.bmp", "a.txt", "b.bmp", "b.txt"]

        await pilot.press("u")  # the newest first: b
        await settled(pilot, "b.bmp")
        assert (dataset / "b.bmp").exists() and not (dataset / "a.bmp").exists()
        await pilot.press("ctrl+z")
        await settled(pilot, "a.bmp")
        assert screen.model.culled == 0
        await pilot.press("u")  # nothing left: says so, changes nothing
        await pilot.pause()
    assert snapshot_of(dataset) == before  # bytes, names, and no trash folder left behind


async def test_undo_works_after_a_restart(dataset: Path) -> None:
    caption = (dataset / "c.txt").read_bytes()
    image = digest(dataset / "c.bmp")
    app = review_app(dataset)
    async with app.run_test(size=(100, 30)) as pilot:
        await settled(pilot, "a.bmp")
        await pilot.press("end", "left", "left")
        await settled(pilot, "c.bmp")
        await pilot.press("delete")
        await settled(pilot, "d.bmp")
        await pilot.press("q")
    assert not (dataset / "c.bmp").exists()

    again = review_app(dataset)
    async with again.run_test(size=(100, 30)) as pilot:
        screen = await settled(pilot, "a.bmp")
        assert screen.model.culled == 1 and "c.bmp" not in [i.name for i in screen.model.visible]
        await pilot.press("u")
        await settled(pilot, "c.bmp")  # the restored image is shown
    assert digest(dataset / "c.bmp") == image and (dataset / "c.txt").read_bytes() == caption


async def test_caption_edit_is_written_on_ctrl_s_and_dropped_on_escape(dataset: Path) -> None:
    app = review_app(dataset)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await settled(pilot, "a.bmp")
        await pilot.press("c")
        editor = screen.query_one("#caption-editor")
        assert editor.has_focus and editor.text == "a red fox in the snow"  # type: ignore[attr-defined]
        await pilot.press("space", "n", "p", "delete", "backspace")  # edit keys, not review keys
        assert screen.model.current is not None and screen.model.current.name == "a.bmp"
        assert (dataset / "a.bmp").exists()
        editor.text = "a red fox, winter"  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert (dataset / "a.txt").read_text() == "a red fox, winter\n"  # the trailing newline is kept
        assert not screen.query_one("#info").editing  # type: ignore[attr-defined]
        assert "a red fox, winter" in str(screen.query_one("#caption-text").render())

        await pilot.press("end")  # e has no caption: writing one creates the file
        await settled(pilot, "e.bmp")
        assert "no caption" in str(screen.query_one("#info-text").render())
        await pilot.press("c")
        screen.query_one("#caption-editor").text = "an owl"  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert (dataset / "e.txt").read_text() == "an owl"
        assert "no caption" not in str(screen.query_one("#info-text").render())

        await pilot.press("home")
        await settled(pilot, "a.bmp")
        await pilot.press("c")
        screen.query_one("#caption-editor").text = "thrown away"  # type: ignore[attr-defined]
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("right")  # review keys work again after Esc
        await settled(pilot, "b.bmp")
    assert (dataset / "a.txt").read_text() == "a red fox, winter\n"


async def test_slash_filters_by_caption_text_and_by_flag(dataset: Path) -> None:
    app = review_app(dataset)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await settled(pilot, "a.bmp")
        field = screen.query_one("#filter")

        async def search(query: str) -> list[str]:
            await pilot.press("slash")
            field.value = query  # type: ignore[attr-defined]
            await pilot.press("enter")
            return [item.name for item in screen.model.visible]

        await pilot.press("slash", "f", "o", "x")
        assert [i.name for i in screen.model.visible] == ["a.bmp", "d.bmp"]  # live, as you type
        await pilot.press("enter")
        await pilot.press("right")
        await settled(pilot, "d.bmp")
        assert "2/2 of 6" in str(screen.query_one("#titlebar").render())

        assert await search("is:caption") == ["e.bmp"]
        assert await search("is:small") == ["c.bmp"]
        assert await search("is:unreadable") == ["broken.jpg"]
        assert await search("SNOW is:flagged") == ["a.bmp"]  # words and flags together, any case
        await full_report(pilot, screen)  # duplicates need the full check (it decodes)
        assert await search("is:duplicate") == ["a.bmp", "d.bmp"]

        await pilot.press("slash", "z")
        assert screen.model.visible == []
        assert "No image matches" in str(screen.query_one("#preview-message").render())
        await pilot.press("escape")  # Esc puts the previous filter back
        assert [i.name for i in screen.model.visible] == ["a.bmp", "d.bmp"]
        assert await search("") == ORDER


async def test_b_dims_what_the_bucket_crop_cuts_away(dataset: Path) -> None:
    app = review_app(dataset)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await settled(pilot, "a.bmp")
        plain = screen.last_result
        assert plain is not None and plain.image is not None and plain.request.crop_box is None
        await pilot.press("b")
        await wait_until(pilot, lambda: shown(screen) == "a.bmp" and screen.last_result.request.crop_box is not None)  # type: ignore[union-attr]
        cropped = screen.last_result
        assert cropped is not None and cropped.image is not None
        # a.bmp is 96x64 (3:2); at resolution 64 its bucket is square, so its sides are cut off
        assert cropped.request.crop_box == (16, 0, 80, 64)
        info = str(screen.query_one("#info-text").render())
        assert "bucket 64x64" in info and "crop 16,0 - 80,64" in info
        width, height = cropped.image.size
        middle = (width // 2, height // 2)
        left_edge = (0, height // 2)
        assert cropped.image.getpixel(middle) == plain.image.getpixel(middle)  # kept: untouched
        assert sum(cropped.image.getpixel(left_edge)) < sum(plain.image.getpixel(left_edge)) * 0.5  # cut: dimmed
        assert "bucket crop" in str(screen.query_one("#titlebar").render())
        await pilot.press("b")
        await wait_until(pilot, lambda: screen.last_result.request.crop_box is None)  # type: ignore[union-attr]


async def test_z_toggles_fit_and_one_to_one(dataset: Path) -> None:
    app = review_app(dataset)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await settled(pilot, "a.bmp")
        fit = screen.last_result
        assert fit is not None and fit.image is not None
        assert fit.image.size == (96, 64)  # fit never enlarges: a small image stays pixel for pixel
        await pilot.press("end")
        await settled(pilot, "e.bmp")
        await pilot.resize_terminal(60, 20)  # now e (80x80) is bigger than the room for it
        await wait_until(pilot, lambda: shown(screen) == "e.bmp" and screen.last_result.request.box[1] < 80)  # type: ignore[union-attr]
        fitted = screen.last_result
        assert fitted is not None and fitted.image is not None
        box = fitted.request.box
        assert fitted.image.size[0] <= box[0] and fitted.image.size[1] <= box[1]
        assert box[0] in fitted.image.size or box[1] in fitted.image.size  # as big as the room allows
        await pilot.press("z")
        await wait_until(pilot, lambda: screen.last_result.request.actual_size)  # type: ignore[union-attr]
        actual = screen.last_result
        assert actual is not None and actual.image is not None
        assert actual.image.size == (min(80, box[0]), min(80, box[1]))  # the middle, one pixel per half-cell
        assert "1:1" in str(screen.query_one("#titlebar").render())
        await pilot.press("z")
        await wait_until(pilot, lambda: not screen.last_result.request.actual_size)  # type: ignore[union-attr]


async def test_r_shows_the_preflight_report(dataset: Path) -> None:
    app = review_app(dataset)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await settled(pilot, "a.bmp")
        await pilot.press("r")
        await wait_until(pilot, lambda: isinstance(app.screen, ReportScreen))
        text = str(app.screen.query_one("#report-text").render())
        assert "broken.jpg" in text and "d.bmp" in text  # unreadable and duplicate named
        await pilot.press("escape")
        assert app.screen is screen
        await pilot.press("delete")  # a change makes the report stale: r waits for a fresh one
        await pilot.press("r")
        await wait_until(pilot, lambda: isinstance(app.screen, ReportScreen))
        assert screen.model.report_is_current
        await pilot.press("r")
        assert app.screen is screen


async def test_question_mark_lists_every_binding_with_its_id(dataset: Path) -> None:
    app = review_app(dataset)
    async with app.run_test(size=(120, 40)) as pilot:
        await settled(pilot, "a.bmp")
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        listed = {row[3] for row in app.screen.rows}
        expected = {b.id for b in ReviewScreen.BINDINGS} | {"app.help", "app.quit"}
        assert expected <= listed
        keys = {row[3]: row[2] for row in app.screen.rows}
        assert keys["review.next"].split(", ") == ["→", "n", "space"]
        await pilot.press("escape")
        assert isinstance(app.screen, ReviewScreen)


async def test_q_quits_and_gives_the_garbage_collector_back(dataset: Path) -> None:
    assert gc.isenabled()
    app = review_app(dataset)
    async with app.run_test(size=(100, 30)) as pilot:
        await settled(pilot, "a.bmp")
        assert not gc.isenabled()  # collected between pictures instead (tuitrain.tui.review.idle_gc)
        await pilot.press("q")
    assert app.return_code == 0
    assert gc.isenabled() and gc.get_freeze_count() == 0


async def test_small_terminal_and_resize(dataset: Path) -> None:
    app = review_app(dataset)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await settled(pilot, "a.bmp")
        small = screen.last_result
        assert small is not None
        await pilot.resize_terminal(160, 48)
        await wait_until(pilot, lambda: screen.last_result.request.box != small.request.box)  # type: ignore[union-attr]
        await settled(pilot, "a.bmp")
        big = screen.last_result
        assert big is not None and big.image is not None and small.image is not None
        assert big.image.size[0] > small.image.size[0]
        await pilot.resize_terminal(80, 24)
        await wait_until(pilot, lambda: screen.last_result.request.box == small.request.box)  # type: ignore[union-attr]
