"""The review screen's mask overlay (m): what a masked-loss or inpainting run will use, over the picture."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from tests.tui.conftest import full_report, review_app, settled, shown, wait_until
from tuitrain.tui.help import HelpScreen
from tuitrain.tui.review.loader import shade_unmasked
from tuitrain.tui.review.screen import ReviewScreen


def masked_dataset(dataset: Path) -> Path:
    """a.bmp (96x64) gets a mask painted as editors export it: white on the left third, transparent elsewhere;
    b.bmp (64x96) a square one (wrong aspect ratio); the others none."""
    mask = Image.new("RGBA", (96, 64), (255, 255, 255, 0))  # transparent white: not masked
    mask.paste((255, 255, 255, 255), (0, 0, 32, 64))
    mask.save(dataset / "a-masklabel.png")
    Image.new("L", (64, 64), 255).save(dataset / "b-masklabel.png")
    return dataset


def preview_subtitle(screen: ReviewScreen) -> str:
    return str(screen.query_one("#preview").border_subtitle)


async def test_m_shades_what_the_mask_leaves_out(dataset: Path) -> None:
    app = review_app(masked_dataset(dataset))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await settled(pilot, "a.bmp")
        plain = screen.last_result
        assert plain is not None and plain.image is not None and plain.request.mask is None
        assert "mask a-masklabel.png" in str(screen.query_one("#info-text").render())
        await pilot.press("m")
        await wait_until(pilot, lambda: shown(screen) == "a.bmp" and screen.last_result.request.mask is not None)  # type: ignore[union-attr]
        masked = screen.last_result
        assert masked is not None and masked.image is not None
        assert masked.image.size == plain.image.size
        width, height = masked.image.size
        inside, outside = (width // 6, height // 2), (width * 5 // 6, height // 2)  # white; transparent (not masked)
        assert masked.image.getpixel(inside) == plain.image.getpixel(inside)
        assert masked.image.getpixel(outside) != plain.image.getpixel(outside)
        left_out = shade_unmasked(plain.image, Image.new("L", plain.image.size, 0))  # all of it shaded
        assert masked.image.getpixel(outside) == left_out.getpixel(outside)
        assert "mask" in str(screen.query_one("#titlebar").render())
        assert preview_subtitle(screen) == "fit · mask"

        await pilot.press("m")  # off again: the plain picture
        await wait_until(pilot, lambda: shown(screen) == "a.bmp" and screen.last_result.request.mask is None)  # type: ignore[union-attr]
        assert screen.last_result.image.tobytes() == plain.image.tobytes()  # type: ignore[union-attr]


async def test_image_without_a_mask_says_so_under_the_overlay(dataset: Path) -> None:
    app = review_app(masked_dataset(dataset))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await settled(pilot, "a.bmp")
        await pilot.press("m", "end")
        await settled(pilot, "e.bmp")
        assert "no mask file" in preview_subtitle(screen)
        assert "no mask" in str(screen.query_one("#info-text").render())
        await pilot.press("m")
        assert "no mask file" not in preview_subtitle(screen)


async def test_mask_of_the_wrong_aspect_ratio_is_flagged(dataset: Path) -> None:
    app = review_app(masked_dataset(dataset))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await settled(pilot, "a.bmp")
        await pilot.press("m", "right")
        await settled(pilot, "b.bmp")
        info = str(screen.query_one("#info-text").render())
        assert "mask b-masklabel.png" in info
        assert "mask file b-masklabel.png is 64x64 but its image b.bmp is 64x96" in info  # the pre-flight's words
        assert "mask unusable" in preview_subtitle(screen)
        assert screen.last_result is not None and screen.last_result.request.mask is None  # not drawn stretched

        await full_report(pilot, screen)  # every image's mask is looked up with the report: is:mask finds it
        await pilot.press("slash")
        screen.query_one("#filter").value = "is:mask"  # type: ignore[attr-defined]
        await pilot.press("enter")
        assert [item.name for item in screen.model.visible] == ["b.bmp"]


async def test_m_is_listed_in_the_help(dataset: Path) -> None:
    app = review_app(dataset)
    async with app.run_test(size=(120, 40)) as pilot:
        await settled(pilot, "a.bmp")
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        keys = {row[3]: row[2] for row in app.screen.rows}
        assert keys["review.mask"] == "m"
