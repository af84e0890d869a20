"""Opening images the same way everywhere: scan headers, previews, hashes, the trainer.

One place decides what "the pixels of this image" are (first frame, EXIF
orientation applied, 16-bit scaled down, transparency on white, CMYK to RGB),
so the preview the TUI shows is what the trainer will see.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from PIL import Image

EXIF_ORIENTATION_TAG = 0x0112

# EXIF orientation -> the transpose that puts the image upright.
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")

BACKGROUND = (255, 255, 255)


class ImageTooLarge(Exception):
    """The header announces more pixels than Pillow will safely decode (a decompression bomb)."""


@dataclass(frozen=True)
class ImageHeader:
    """What a header tells us; width and height are as displayed (EXIF orientation applied)."""

    width: int
    height: int
    format: str
    mode: str
    orientation: int = 1
    animated: bool = False

    def to_record(self) -> dict[str, object]:
        """For the scan cache (dataclasses.asdict deep-copies, which is slow over 10,000 files)."""
        return {
            "width": self.width,
            "height": self.height,
            "format": self.format,
            "mode": self.mode,
            "orientation": self.orientation,
            "animated": self.animated,
        }

    def notes(self) -> tuple[str, ...]:
        """How the trainer will handle this image where it is not plain 8-bit RGB."""
        notes = []
        if self.animated:
            notes.append("animated: the first frame is used")
        if self.mode == "CMYK":
            notes.append("CMYK: converted to RGB")
        if self.mode in _SIXTEEN_BIT_MODES:
            notes.append("16-bit: scaled to 8-bit")
        if self.mode in _ALPHA_MODES:
            notes.append("transparency: composited on white")
        return tuple(notes)


def pixel_limit() -> int | None:
    """Pillow's decompression-bomb limit, read each time so a user's override applies."""
    return Image.MAX_IMAGE_PIXELS


def too_large_reason(width: int, height: int) -> str | None:
    limit = pixel_limit()
    if limit is None or width * height <= limit:
        return None
    return (
        f"too large to decode safely: {width}x{height} = {width * height / 1e6:.1f} MP "
        f"(limit {limit / 1e6:.1f} MP); not decoded"
    )


def _bomb_reason(error: Exception) -> str:
    """Pillow refused to open the file; its message has the pixel count but not the sides."""
    match = re.search(r"\((\d+) pixels\)", str(error))
    limit = pixel_limit() or 0
    if not match:
        return f"too large to decode safely: {error}; not decoded"
    return f"too large to decode safely: {int(match.group(1)) / 1e6:.1f} MP (limit {limit / 1e6:.1f} MP); not decoded"


def exif_orientation(image: Image.Image) -> int:
    """The EXIF orientation (1-8) without decoding pixels."""
    try:
        if image.format == "PNG":
            # PNG's getexif() decodes the whole image to look for an eXIf chunk after
            # the pixels; one before them (the usual place) is already in info.
            exif = Image.Exif()
            if image.info.get("exif"):
                exif.load(image.info["exif"])
        else:
            exif = image.getexif()
        value = exif.get(EXIF_ORIENTATION_TAG, 1)
    except Exception:  # a broken EXIF block must not make the image unreadable
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _open_checked(source: Path | BinaryIO) -> Image.Image:
    """Image.open, with decompression bombs raised as ImageTooLarge at Pillow's warning limit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(source)
        except Image.DecompressionBombError as error:
            raise ImageTooLarge(_bomb_reason(error)) from None
    reason = too_large_reason(*image.size)
    if reason:
        image.close()
        raise ImageTooLarge(reason)
    return image


def _stored_size(image: Image.Image) -> tuple[int, int]:
    """Width and height as stored, before orientation.

    Pillow 11+ reports TIFFs already turned upright (it turns them as it
    loads them), older versions do not, so for TIFF we read the tags.
    """
    if image.format == "TIFF":
        return int(image.tag_v2[256]), int(image.tag_v2[257])  # type: ignore[attr-defined]
    return image.size


def read_header(source: Path | BinaryIO) -> ImageHeader:
    """Size, format and mode from the header only; no pixel data is decoded.

    Raises ImageTooLarge for decompression bombs, PIL.UnidentifiedImageError for
    non-images and OSError for unreadable files.
    """
    with _open_checked(source) as image:
        width, height = _stored_size(image)
        orientation = exif_orientation(image)
        if orientation >= 5:  # 5-8 turn by 90 degrees
            width, height = height, width
        return ImageHeader(
            width=width,
            height=height,
            format=image.format or "",
            mode=image.mode,
            orientation=orientation,
            animated=bool(getattr(image, "is_animated", False)),
        )


def to_rgb(image: Image.Image, background: tuple[int, int, int] = BACKGROUND) -> Image.Image:
    """8-bit RGB the way the trainer sees it.

    Pillow's own convert() clips 16-bit grey to white and drops transparency to
    whatever colour hides under it, so those two are handled here: transparency is
    composited onto `background` (white for pictures; black for masks, where a
    transparent pixel means "not masked").
    """
    if image.mode == "RGB":
        return image
    if image.mode in _SIXTEEN_BIT_MODES:
        return image.convert("I").point(lambda value: value * (1 / 256)).convert("L").convert("RGB")
    if image.mode == "F":
        return image.convert("L").convert("RGB")
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        backdrop = Image.new("RGBA", rgba.size, (*background, 255))
        return Image.alpha_composite(backdrop, rgba).convert("RGB")
    return image.convert("RGB")


def load_rgb(path: Path, *, draft_size: tuple[int, int] | None = None,
             background: tuple[int, int, int] = BACKGROUND) -> Image.Image:
    """Decode the first frame, upright, as 8-bit RGB.

    draft_size lets JPEGs decode at a reduced scale (at least that size), which
    is what makes previews and perceptual hashes of big photos cheap.
    """
    with _open_checked(path) as image:
        orientation = exif_orientation(image)
        if image.format == "TIFF":
            orientation = 1  # Pillow turns TIFFs upright itself while loading them
        if draft_size is not None and image.format in ("JPEG", "MPO"):
            if orientation >= 5:
                draft_size = (draft_size[1], draft_size[0])
            image.draft("RGB" if image.mode == "RGB" else None, draft_size)
        image.seek(0)
        image.load()
        rgb = to_rgb(image, background)
        if orientation in _UPRIGHT:
            rgb = rgb.transpose(_UPRIGHT[orientation])
        if rgb is image:
            rgb = image.copy()  # detach from the file we are about to close
        return rgb
