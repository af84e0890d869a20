"""The review of an editing model's data (FLUX.1 Kontext): each image beside its reference (issue 16).

A run whose concept names a references folder (data.concepts[].references), or `tuitrain cull DIR
--references REFS`, is reviewed as pairs: the reference on the left, the image (the target) on the right,
each named with its size, and a marker when the reference is missing, of another shape (both leave the
image out of training) or of another size (resized). e toggles the pair view; Delete culls the image and
never touches its reference.
"""

from __future__ import annotations

from pathlib import Path

from PIL import ImageOps
from textual.content import Content
from textual.pilot import Pilot

from tests.tui.conftest import (
    HALFCELL,
    full_report,
    make_dataset,
    notifications,
    picture,
    review_app,
    settled,
    shown,
    tuitrain,
    wait_until,
)
from tuitrain.tui.app import TuitrainApp
from tuitrain.tui.help import HelpScreen
from tuitrain.tui.review.screen import ReviewScreen


def make_references(data: Path, b_ext: str = ".jpg") -> Path:
    """References beside make_dataset's images: a.png (inverted a, same size), b.jpg (half b's size),
    c.png (square, c is 40x28: another shape), e.png (inverted e); d has none. orphan.png pairs with nothing."""
    refs = data.parent / "refs"
    refs.mkdir()
    ImageOps.invert(picture((96, 64), 1)).save(refs / "a.png")
    ImageOps.invert(picture((64, 96), 2)).resize((32, 48)).save(refs / f"b{b_ext}")
    picture((30, 30), 3).save(refs / "c.png")
    ImageOps.invert(picture((80, 80), 5)).save(refs / "e.png")
    picture((16, 16), 7).save(refs / "orphan.png")
    return refs


def kontext_run(cli, tmp_path: Path) -> tuple[Path, Path]:  # type: ignore[no-untyped-def]
    """A FLUX.1 Kontext run (its preset) whose concept pairs the faery set with refs/."""
    data = make_dataset(tmp_path / "faery-set")
    refs = make_references(data)
    made = cli("new", "kontext", "--preset", "flux-kontext-lora", "--data", str(data),
               "--set", f"data.concepts[0].references={refs}", "--set", "data.resolution=64")
    assert made.returncode == 0, made.stderr
    return data, refs


async def open_review(pilot: Pilot[object]) -> ReviewScreen:
    """d on the home screen's (only) run, then wait for the first pair and the quick report."""
    await pilot.pause()
    await pilot.press("d")
    screen = await settled(pilot, "a.bmp")
    await wait_until(pilot, lambda: screen.last_result is not None and screen.last_result.reference is not None)
    return screen


def titles(screen: ReviewScreen, pane: str) -> tuple[str, str]:
    """A pane's border title and subtitle as drawn (markup gone)."""
    widget = screen.query_one(pane)
    return (Content.from_markup(str(widget.border_title)).plain,
            Content.from_markup(str(widget.border_subtitle)).plain)


def message(screen: ReviewScreen, pane: str) -> str:
    return str(screen.query_one(f"{pane} .message").render())


def info(screen: ReviewScreen) -> str:
    return " ".join(str(screen.query_one("#info-text").render()).split())


async def test_a_kontext_run_is_reviewed_as_pairs_reference_left_target_right(cli, workspace: Path,  # type: ignore[no-untyped-def]
                                                                             tmp_path: Path) -> None:
    kontext_run(cli, tmp_path)
    app = TuitrainApp(workspace, image_protocol=HALFCELL)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_review(pilot)
        reference, target = screen.query_one("#reference"), screen.query_one("#preview")
        assert reference.display and reference.region.right <= target.region.x  # side by side, reference left
        assert titles(screen, "#reference") == ("reference: a.png", "96x64")
        assert titles(screen, "#preview") == ("target: a.bmp", "96x64 · fit")
        assert "reference a.png 96x64" in info(screen)
        result = screen.last_result
        assert result is not None and result.image is not None and result.reference is not None
        pair = result.reference.image
        assert pair is not None and pair.size == result.image.size  # the same shape, fitted to the same room
        x, y = pair.width // 2, pair.height // 2  # the reference drawn is a.png (a inverted), not a.bmp again
        assert all(abs(r + t - 255) <= 12 for r, t in zip(pair.getpixel((x, y)), result.image.getpixel((x, y))))
        assert "pairs" in str(screen.query_one("#titlebar").render())

        await pilot.press("right")  # b: its reference is half its size, so the trainer upscales it
        await settled(pilot, "b.bmp")
        assert titles(screen, "#reference") == ("reference: b.jpg", "32x48 ≠ target")
        assert titles(screen, "#preview")[0] == "target: b.bmp"
        assert "reference b.jpg 32x48" in info(screen)
        assert "reference b.jpg is 32x48: upscaled x2.00 to its image's 64x96" in info(screen)

        before = screen.last_result.reference.image  # type: ignore[union-attr]
        await pilot.press("b")  # the bucket crop dims the reference as it dims the image: both are cut alike
        await wait_until(pilot, lambda: screen.last_result.request.crop_box is not None  # type: ignore[union-attr]
                         and shown(screen) == "b.bmp")
        cropped = screen.last_result.reference.image  # type: ignore[union-attr]
        assert before is not None and cropped is not None and cropped.size == before.size
        middle, top = (cropped.width // 2, cropped.height // 2), (cropped.width // 2, 0)  # 64x96 keeps 16-80 of 96
        assert cropped.getpixel(middle) == before.getpixel(middle)
        assert cropped.getpixel(top) == tuple(int(value * 0.3) for value in before.getpixel(top))  # type: ignore[union-attr]


async def test_missing_misshapen_and_unreadable_references_are_marked(cli, workspace: Path,  # type: ignore[no-untyped-def]
                                                                       tmp_path: Path) -> None:
    _, refs = kontext_run(cli, tmp_path)
    (refs / "e.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")  # e's reference is there, but broken
    app = TuitrainApp(workspace, image_protocol=HALFCELL)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_review(pilot)
        await full_report(pilot, screen)
        await pilot.press("right", "right", "right")
        await settled(pilot, "c.bmp")
        assert titles(screen, "#reference") == ("reference: c.png", "30x30 ✗ other shape")
        assert "c.png is 30x30 but its image c.bmp is 40x28" in info(screen) and "not trained" in info(screen)
        assert "unreadable" not in info(screen)  # a reference problem, said as one

        await pilot.press("right")
        await settled(pilot, "d.bmp")
        assert titles(screen, "#reference")[0] == "reference: ✗ MISSING"
        assert "no reference image" in message(screen, "#reference")
        assert "d.* is not in refs/" in message(screen, "#reference")
        assert "left out of training" in message(screen, "#reference")
        assert screen.last_result is not None and screen.last_result.request.reference is None
        assert "no reference d.* in refs/: not trained" in info(screen)

        await pilot.press("right")
        await settled(pilot, "e.bmp")
        await wait_until(pilot, lambda: screen.last_result.reference is not None)  # type: ignore[union-attr]
        assert titles(screen, "#reference") == ("reference: e.png", "✗ unreadable")
        assert "cannot show the reference" in message(screen, "#reference")
        assert shown(screen) == "e.bmp"  # the image itself is still drawn
        assert "reference e.png (unusable)" in info(screen)

        await pilot.press("slash")  # is:reference finds every pair with a problem, the resized one too
        screen.query_one("#filter").value = "is:reference"  # type: ignore[attr-defined]
        await pilot.press("enter")
        assert [item.name for item in screen.model.visible] == ["b.bmp", "c.bmp", "d.bmp", "e.bmp"]


async def test_e_toggles_the_pair_view_and_the_help_says_it(cli, workspace: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    kontext_run(cli, tmp_path)
    app = TuitrainApp(workspace, image_protocol=HALFCELL)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_review(pilot)
        paired = screen.last_result
        assert paired is not None
        await pilot.press("e")
        await wait_until(pilot, lambda: shown(screen) == "a.bmp" and screen.last_result.request.reference is None)  # type: ignore[union-attr]
        assert not screen.query_one("#reference").display
        assert titles(screen, "#preview") == ("a.bmp", "fit")
        alone = screen.last_result
        assert alone is not None and alone.reference is None and alone.image is not None
        assert paired.image is not None and alone.image.width > paired.image.width  # the image takes the room
        assert "e shows pairs" in str(screen.query_one("#titlebar").render())

        await pilot.press("e")
        await wait_until(pilot, lambda: shown(screen) == "a.bmp" and screen.last_result.reference is not None)  # type: ignore[union-attr]
        assert screen.query_one("#reference").display
        assert titles(screen, "#reference") == ("reference: a.png", "96x64")

        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        keys = {row[3]: row[2] for row in app.screen.rows}
        assert keys["review.pairs"] == "e"
        notes = " ".join(app.screen.notes)
        assert "Delete culls the image" in notes and "its reference stays" in notes


async def test_delete_culls_the_target_and_leaves_its_reference(cli, workspace: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data, refs = kontext_run(cli, tmp_path)
    reference = (refs / "a.png").read_bytes()
    app = TuitrainApp(workspace, image_protocol=HALFCELL)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_review(pilot)
        await pilot.press("delete")
        screen = await settled(pilot, "b.bmp")
        assert not (data / "a.bmp").exists() and not (data / "a.txt").exists()
        assert (refs / "a.png").read_bytes() == reference  # in place, untouched
        assert not (refs / ".tuitrain-trash").exists()
        assert any("its reference a.png stays" in text for text in notifications(app))

        await pilot.press("u")  # the cull stays recoverable, and the pair is whole again
        await settled(pilot, "a.bmp")
        assert (data / "a.bmp").exists()
        assert titles(screen, "#reference") == ("reference: a.png", "96x64")


async def test_neighbours_are_prepared_as_pairs(cli, workspace: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The next pair is ready before Right is pressed: both pictures come from the one display thread."""
    kontext_run(cli, tmp_path)
    app = TuitrainApp(workspace, image_protocol=HALFCELL)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_review(pilot)
        await full_report(pilot, screen)  # every reference looked up: neighbours' requests name theirs
        nxt = screen.model.visible[1]
        request = screen._request_for(nxt, screen.query_one("#preview").box, 0)  # noqa: SLF001
        assert request.reference is not None and request.reference.name == "b.jpg"
        assert screen._loader is not None  # noqa: SLF001
        await wait_until(pilot, lambda: screen._loader.is_ready(request))  # type: ignore[union-attr]  # noqa: SLF001
        await pilot.press("right")
        result = screen.last_result
        assert shown(screen) == "b.bmp" and result is not None and result.seconds == 0.0  # no wait: prepared
        assert result.reference is not None and result.reference.image is not None


async def test_a_set_without_references_has_no_pair_view(dataset: Path) -> None:
    app = review_app(dataset)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await settled(pilot, "a.bmp")
        assert not screen.query_one("#reference").display
        assert titles(screen, "#preview")[0] == "a.bmp"
        await pilot.press("e")
        await pilot.pause()
        assert not screen.query_one("#reference").display
        assert any("No reference images here" in text for text in notifications(app))
        assert "pairs" not in str(screen.query_one("#titlebar").render())


async def test_cull_references_pairs_a_bare_folder(tmp_path: Path) -> None:
    """`tuitrain cull DIR --references REFS`: the same pair view without a run."""
    data = make_dataset(tmp_path / "faery-set")
    refs = make_references(data)
    app = review_app(data, references=refs)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await settled(pilot, "a.bmp")
        await wait_until(pilot, lambda: screen.last_result is not None and screen.last_result.reference is not None)
        assert titles(screen, "#reference") == ("reference: a.png", "96x64")
        await full_report(pilot, screen)
        report = screen.model.report
        assert report is not None
        assert any("orphan.png" in warning for concept in report.concepts for warning in concept.warnings)


def test_cull_references_must_be_a_folder_and_goes_with_the_review_only(tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "faery-set")
    missing = tuitrain("cull", str(data), "--references", str(tmp_path / "nowhere"))
    assert missing.returncode != 0 and "--references" in missing.stderr and "no such folder" in missing.stderr
    refs = make_references(data)
    listed = tuitrain("cull", str(data), "--references", str(refs), "--list-trash")
    assert listed.returncode != 0 and "--references goes with the review" in listed.stderr


def settle_on_pair(name: str, *keys: str):  # type: ignore[no-untyped-def]
    """run_before for snap_compare: the full report, then keys, then the pair (or the missing marker) drawn."""

    async def run_before(pilot: Pilot[object]) -> None:
        screen = await settled(pilot, "a.bmp")
        await full_report(pilot, screen)
        await pilot.press(*keys)
        screen = await settled(pilot, name)
        await wait_until(pilot, lambda: screen.last_result is not None and (
            (screen.last_result.reference is not None) == (screen.last_result.request.reference is not None)))
        await pilot.pause()

    return run_before


def test_pairs_80x24_reference_of_another_size(snap_compare, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The smallest terminal: reference left, target right, each named with its size; b's reference is half
    its size (marked: resized), and the info panel says by how much."""
    data = make_dataset(tmp_path / "faery-set")
    app = review_app(data, references=make_references(data, ".png"))
    assert snap_compare(app, terminal_size=(80, 24), run_before=settle_on_pair("b.bmp", "right"))


def test_pairs_160x48_missing_reference(snap_compare, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A wide terminal on d, whose reference is missing: the left pane says so and that d will not train."""
    data = make_dataset(tmp_path / "faery-set")
    app = review_app(data, references=make_references(data, ".png"))
    assert snap_compare(app, terminal_size=(160, 48), run_before=settle_on_pair("d.bmp", "end", "left"))
