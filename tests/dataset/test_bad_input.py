"""Every kind of bad or unusual file: reported with a reason or handled, never a crash."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from tuitrain.dataset import ConceptSpec, PreviewError, load_rgb, make_preview, scan_concept
from tuitrain.dataset.decode import ImageTooLarge

from .conftest import make_unreadable, png_with_declared_size, save, textured


def problem_of(folder: Path, name: str, cache_dir: Path) -> str:
    """The scan's reason for one file (fails the test if the file was accepted)."""
    scan = scan_concept(ConceptSpec(folder), cache_dir=cache_dir)
    reasons = {problem.path.name: problem.reason for problem in scan.problems}
    assert name not in [image.path.name for image in scan.images]
    return reasons[name]


def only_image(folder: Path, cache_dir: Path):  # type: ignore[no-untyped-def]
    scan = scan_concept(ConceptSpec(folder), cache_dir=cache_dir)
    assert scan.problems == []
    (image,) = scan.images
    return image


def test_zero_byte_file(tmp_path: Path, cache_dir: Path) -> None:
    (tmp_path / "empty.jpg").write_bytes(b"")
    assert problem_of(tmp_path, "empty.jpg", cache_dir) == "empty file (0 bytes)"


def test_truncated_jpeg(tmp_path: Path, cache_dir: Path) -> None:
    data = save(tmp_path / "whole.jpg", (200, 150)).read_bytes()
    (tmp_path / "whole.jpg").unlink()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) * 2 // 3])
    assert "truncated" in problem_of(tmp_path, "cut.jpg", cache_dir)


def test_truncated_png(tmp_path: Path, cache_dir: Path) -> None:
    data = save(tmp_path / "whole.png", (200, 150)).read_bytes()
    (tmp_path / "whole.png").unlink()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    assert "truncated" in problem_of(tmp_path, "cut.png", cache_dir)


def test_truncated_webp_and_gif(tmp_path: Path, cache_dir: Path) -> None:
    for name in ("cut.webp", "cut.gif"):
        data = save(tmp_path / "tmp" / name, (200, 150)).read_bytes()
        (tmp_path / name).write_bytes(data[: len(data) // 2])
    scan = scan_concept(ConceptSpec(tmp_path), cache_dir=cache_dir)
    assert scan.images == []
    assert sorted(p.path.name for p in scan.problems) == ["cut.gif", "cut.webp"]


def test_jpeg_with_data_after_the_end_marker_is_fine(tmp_path: Path, cache_dir: Path) -> None:
    # Phones append motion-photo videos and other trailers after the image.
    path = save(tmp_path / "phone.jpg", (80, 60))
    path.write_bytes(path.read_bytes() + b"\x00ftypmp42" + os.urandom(3000))
    assert only_image(tmp_path, cache_dir).size == (80, 60)


def test_text_file_named_png(tmp_path: Path, cache_dir: Path) -> None:
    (tmp_path / "notes.png").write_text("this is not a picture\n", encoding="utf-8")
    assert problem_of(tmp_path, "notes.png", cache_dir) == "not an image: the file holds text"


def test_random_bytes_named_jpg(tmp_path: Path, cache_dir: Path) -> None:
    (tmp_path / "noise.jpg").write_bytes(bytes(range(256)) * 4)
    assert problem_of(tmp_path, "noise.jpg", cache_dir).startswith("not an image")


@pytest.mark.parametrize("side", [20_000, 10_000])  # past Pillow's error, and in its warning-only zone
def test_decompression_bomb_is_reported_not_decoded(tmp_path: Path, cache_dir: Path, side: int) -> None:
    path = png_with_declared_size(tmp_path / "bomb.png", side, side)

    reason = problem_of(tmp_path, "bomb.png", cache_dir)

    assert reason.startswith("too large to decode safely") and reason.endswith("not decoded")
    assert f"{side * side / 1e6:.1f} MP" in reason
    with pytest.raises(ImageTooLarge):
        load_rgb(path)
    with pytest.raises(PreviewError, match="too large"):
        make_preview(path, (100, 100))


def test_unsupported_format_is_named(tmp_path: Path, cache_dir: Path) -> None:
    (tmp_path / "phone.heic").write_bytes(b"\x00\x00\x00\x18ftypheic" + b"\x00" * 100)
    assert "unsupported format (.heic)" in problem_of(tmp_path, "phone.heic", cache_dir)


def test_broken_symlink(tmp_path: Path, cache_dir: Path) -> None:
    os.symlink(tmp_path / "gone.png", tmp_path / "link.png")
    reason = problem_of(tmp_path, "link.png", cache_dir)
    assert reason.startswith("broken symlink") and "gone.png" in reason


def test_working_symlink_is_followed(tmp_path: Path, cache_dir: Path) -> None:
    save(tmp_path / "elsewhere" / "real.png", (30, 20))
    (tmp_path / "data").mkdir()
    os.symlink(tmp_path / "elsewhere" / "real.png", tmp_path / "data" / "link.png")
    assert only_image(tmp_path / "data", cache_dir).size == (30, 20)


def test_unreadable_file(tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save(tmp_path / "secret.png")
    make_unreadable(path, monkeypatch)
    assert problem_of(tmp_path, "secret.png", cache_dir) == "permission denied"


def test_permission_problem_is_not_cached(tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save(tmp_path / "secret.png", (30, 20))
    with monkeypatch.context() as patch:
        make_unreadable(path, patch)
        assert problem_of(tmp_path, "secret.png", cache_dir) == "permission denied"
    os.chmod(path, 0o644)  # fixing permissions does not change mtime
    assert only_image(tmp_path, cache_dir).size == (30, 20)


def test_unreadable_subfolder_is_reported(tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save(tmp_path / "ok.png")
    save(tmp_path / "locked" / "x.png")
    real_scandir = os.scandir

    def scandir(path):  # type: ignore[no-untyped-def]
        if os.fspath(path).endswith("locked"):
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    scan = scan_concept(ConceptSpec(tmp_path, recursive=True), cache_dir=cache_dir)

    assert [image.rel for image in scan.images] == ["ok.png"]
    assert [(p.path.name, p.reason) for p in scan.problems] == [("locked", "cannot list folder: Permission denied")]


# --- unusual but valid images: handled, with the trainer seeing the right pixels -------------


def test_cmyk_jpeg(tmp_path: Path, cache_dir: Path) -> None:
    Image.new("CMYK", (40, 30), (0, 255, 255, 0)).save(tmp_path / "print.jpg")  # pure red in CMYK

    image = only_image(tmp_path, cache_dir)
    pixels = load_rgb(image.path)

    assert image.mode == "CMYK" and "CMYK: converted to RGB" in image.notes
    assert pixels.mode == "RGB"
    red, green, blue = pixels.getpixel((20, 15))
    assert red > 200 and green < 60 and blue < 60


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path: Path, cache_dir: Path) -> None:
    Image.new("I;16", (40, 30), 32768).save(tmp_path / "scan.png")  # mid grey in 16 bits

    image = only_image(tmp_path, cache_dir)
    pixels = load_rgb(image.path)

    assert image.mode.startswith("I") and "16-bit: scaled to 8-bit" in image.notes
    assert pixels.getpixel((5, 5)) == (128, 128, 128)  # Pillow's plain convert would give white


def test_palette_png(tmp_path: Path, cache_dir: Path) -> None:
    textured((40, 30), 1).convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(tmp_path / "pal.png")
    expected = Image.open(tmp_path / "pal.png").convert("RGB")

    image = only_image(tmp_path, cache_dir)

    assert image.mode == "P" and image.notes == ()
    assert load_rgb(image.path).tobytes() == expected.tobytes()


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_transparency_is_composited_on_white(tmp_path: Path, cache_dir: Path, mode: str) -> None:
    picture = Image.new("RGBA", (40, 30), (0, 0, 0, 0))  # fully transparent black
    picture.paste((0, 0, 0, 255), (0, 0, 20, 30))  # left half opaque black
    picture.convert(mode).save(tmp_path / "cutout.png")

    image = only_image(tmp_path, cache_dir)
    pixels = load_rgb(image.path)

    assert "transparency: composited on white" in image.notes
    assert pixels.getpixel((5, 5)) == (0, 0, 0)
    assert pixels.getpixel((35, 5)) == (255, 255, 255)


def test_palette_png_with_transparent_colour(tmp_path: Path) -> None:
    picture = Image.new("P", (10, 10), 0)
    picture.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    picture.paste(1, (0, 0, 5, 10))
    picture.save(tmp_path / "pt.png", transparency=0)

    pixels = load_rgb(tmp_path / "pt.png")

    assert pixels.getpixel((2, 2)) == (255, 0, 0)
    assert pixels.getpixel((8, 2)) == (255, 255, 255)


@pytest.mark.parametrize("extension", ["gif", "webp"])
def test_animated_images_use_the_first_frame(tmp_path: Path, cache_dir: Path, extension: str) -> None:
    colours = [(250, 0, 0), (0, 250, 0), (0, 0, 250)]
    frames = [Image.new("RGB", (40, 30), colour) for colour in colours]
    options = {"lossless": True} if extension == "webp" else {}
    frames[0].save(tmp_path / f"anim.{extension}", save_all=True, append_images=frames[1:], duration=100, **options)

    image = only_image(tmp_path, cache_dir)
    red, green, blue = load_rgb(image.path).getpixel((20, 15))

    assert image.animated and "animated: the first frame is used" in image.notes
    assert red > 200 and green < 30 and blue < 30


@pytest.mark.parametrize("extension", ["jpg", "png", "webp", "tiff"])
@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_rotated_images_load_upright(tmp_path: Path, cache_dir: Path, extension: str, orientation: int) -> None:
    picture = Image.new("RGB", (60, 40), (0, 0, 255))
    picture.paste((255, 0, 0), (0, 0, 10, 40))  # red stripe along the stored left edge
    exif = Image.Exif()
    exif[0x0112] = orientation
    picture.save(tmp_path / f"rot.{extension}", exif=exif, **({"quality": 95} if extension == "jpg" else {}))
    # Where the stored left edge ends up once the image is shown upright:
    expected_size, red_at = {3: ((60, 40), (56, 20)), 6: ((40, 60), (20, 3)), 8: ((40, 60), (20, 56))}[orientation]

    pixels = load_rgb(tmp_path / f"rot.{extension}")
    (image,) = scan_concept(ConceptSpec(tmp_path), cache_dir=cache_dir).images

    assert image.size == pixels.size == expected_size
    assert pixels.getpixel(red_at)[0] > 200
    assert make_preview(tmp_path / f"rot.{extension}", (30, 30)).size == (
        (30, 20) if expected_size == (60, 40) else (20, 30)
    )


def test_every_bad_case_in_one_folder_scans_without_crashing(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save(tmp_path / "good.png")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("hello", encoding="utf-8")
    png_with_declared_size(tmp_path / "bomb.png", 30_000, 30_000)
    os.symlink("missing.png", tmp_path / "broken.png")
    make_unreadable(save(tmp_path / "locked.png"), monkeypatch)

    scan = scan_concept(ConceptSpec(tmp_path), cache_dir=cache_dir)

    assert [image.rel for image in scan.images] == ["good.png"]
    assert sorted(p.path.name for p in scan.problems) == [
        "bomb.png",
        "broken.png",
        "empty.png",
        "locked.png",
        "text.png",
    ]
    assert all(p.reason for p in scan.problems)
