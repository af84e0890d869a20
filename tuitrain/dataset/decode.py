"""Opening images the same way everywhere: scan headers, previews, hashes, the trainer.

One place decides what "the pixels of this image" are (first frame, EXIF
orientation applied, 16-bit scaled down, transparency on white, CMYK to RGB),
so the preview the TUI shows is what the trainer will see. It also decides which
files are images at all: only the formats in SUPPORTED_FORMATS are opened, whatever
the extension (Pillow would otherwise open PSD, JPEG 2000 or EPS by their content, and
EPS runs Ghostscript), only regular files are read, and nothing over PIXEL_LIMIT
pixels or without a single pixel is decoded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from PIL import Image, features

from tuitrain.dataset.fsutil import open_regular
from tuitrain.dataset.pillow_warnings import as_notes, captured

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

# The formats tuitrain reads (Pillow's names; the order is the order they are tried in).
# MPO (phones' multi-picture JPEGs) comes through the JPEG plugin.
SUPPORTED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF") + (
    ("AVIF",) if features.check("avif") else ()
)
# Pillow's own default decompression-bomb limit (about 89.5 MP, 256 MiB of 24-bit pixels),
# fixed here rather than read from Image.MAX_IMAGE_PIXELS, which any library in the
# trainer's process may change: `check` and `train` must agree on every file.
PIXEL_LIMIT = 89_478_485
# No image file is read past this size; sharper limits come from the pixels.
MAX_IMAGE_FILE_BYTES = 1 << 30


class UnusableImage(Exception):
    """A file that is an image of a supported format but that tuitrain will not decode; str() says why."""


class ImageTooLarge(UnusableImage):
    """The header announces more pixels than PIXEL_LIMIT (a decompression bomb)."""


@dataclass(frozen=True)
class ImageHeader:
    """What a header tells us; width and height are as displayed (EXIF orientation applied)."""

    width: int
    height: int
    format: str
    mode: str
    orientation: int = 1
    animated: bool = False
    warnings: tuple[str, ...] = ()  # what Pillow warned about while reading the header

    def to_record(self) -> dict[str, object]:
        """For the scan cache (dataclasses.asdict deep-copies, which is slow over 10,000 files)."""
        return {
            "width": self.width,
            "height": self.height,
            "format": self.format,
            "mode": self.mode,
            "orientation": self.orientation,
            "animated": self.animated,
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_record(cls, record: dict[str, object]) -> ImageHeader:
        """The inverse of to_record (TypeError for a record of another shape)."""
        fields = dict(record)
        fields["warnings"] = tuple(fields.get("warnings") or ())  # type: ignore[arg-type]
        return cls(**fields)  # type: ignore[arg-type]

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
        return tuple(notes) + as_notes(self.warnings)


def pixel_limit() -> int:
    """The most pixels tuitrain decodes from one image (see PIXEL_LIMIT)."""
    return PIXEL_LIMIT


def size_problem(width: int, height: int) -> str | None:
    """Why an image of this size is not decoded at all: no pixels, or a decompression bomb."""
    if width < 1 or height < 1:
        return f"zero-sized image ({width}x{height}): nothing to train on"
    limit = pixel_limit()
    if width * height <= limit:
        return None
    return (
        f"too large to decode safely: {width}x{height} = {width * height / 1e6:.1f} MP "
        f"(limit {limit / 1e6:.1f} MP); not decoded"
    )


def _bomb_reason(error: Exception) -> str:
    """Pillow refused to open the file; its message has the pixel count but not the sides."""
    match = re.search(r"\((\d+) pixels\)", str(error))
    limit = pixel_limit()
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


def _open_checked(source: BinaryIO) -> Image.Image:
    """Image.open of a supported format only; no pixels or too many raise UnusableImage / ImageTooLarge.

    Call inside pillow_warnings.captured(): DecompressionBombWarning is dropped there.
    """
    try:
        image = Image.open(source, formats=SUPPORTED_FORMATS)
    except Image.DecompressionBombError as error:
        raise ImageTooLarge(_bomb_reason(error)) from None
    reason = size_problem(*image.size)
    if reason:
        image.close()
        raise (UnusableImage if image.size[0] < 1 or image.size[1] < 1 else ImageTooLarge)(reason)
    return image


def _open_file(source: Path | str | BinaryIO) -> BinaryIO:
    """A handle to read an image from: a path is opened only if it is a regular file of sane size."""
    if isinstance(source, (str, Path)):
        return open_regular(source, max_bytes=MAX_IMAGE_FILE_BYTES)
    return source


def _stored_size(image: Image.Image) -> tuple[int, int]:
    """Width and height as stored, before orientation.

    Pillow 11+ reports TIFFs already turned upright (it turns them as it
    loads them), older versions do not, so for TIFF we read the tags.
    """
    if image.format == "TIFF":
        return int(image.tag_v2[256]), int(image.tag_v2[257])  # type: ignore[attr-defined]
    return image.size


def read_header(source: Path | str | BinaryIO) -> ImageHeader:
    """Size, format and mode from the header only; no pixel data is decoded.

    Raises UnusableImage (ImageTooLarge for decompression bombs) for images that are not
    decoded, PIL.UnidentifiedImageError for non-images and unsupported formats, and
    OSError for unreadable files (fsutil.NotRegularFile for FIFOs and devices).
    """
    handle = _open_file(source)
    try:
        with captured() as said, _open_checked(handle) as image:
            width, height = _stored_size(image)
            orientation = exif_orientation(image)
            animated = bool(getattr(image, "is_animated", False))
            image_format, mode = image.format or "", image.mode
    finally:
        if handle is not source:
            handle.close()
    reason = size_problem(width, height)  # TIFF tags may disagree with the size Pillow settled on
    if reason:
        raise UnusableImage(reason)
    if orientation >= 5:  # 5-8 turn by 90 degrees
        width, height = height, width
    return ImageHeader(
        width=width,
        height=height,
        format=image_format,
        mode=mode,
        orientation=orientation,
        animated=animated,
        warnings=tuple(said),
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


def load_rgb(path: Path | str, *, draft_size: tuple[int, int] | None = None,
             background: tuple[int, int, int] = BACKGROUND, notes: list[str] | None = None) -> Image.Image:
    """Decode the first frame, upright, as 8-bit RGB.

    draft_size lets JPEGs decode at a reduced scale (at least that size), which
    is what makes previews and perceptual hashes of big photos cheap. What Pillow
    warns about on the way is added to `notes` (and never printed). Raises like
    read_header, and whatever the decoder raises for broken pixel data.
    """
    with open_regular(path, max_bytes=MAX_IMAGE_FILE_BYTES) as handle, captured() as said:
        try:
            with _open_checked(handle) as image:
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
        finally:
            if notes is not None:
                notes.extend(note for note in said if note not in notes)
