"""A seeded corpus of good, broken, exotic and hostile image files, generated in the test (nothing downloaded).

Every supported format (and mode variants) is written whole, cut at random offsets and
with random bytes flipped; around them go the shapes, sizes, wrong extensions and
non-regular files issue 14 found. `expected` holds the verdicts known in advance (the
cut and flipped files have none: what matters for them is that `check` and `train` agree).
"""

from __future__ import annotations

import io
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

from PIL import features

from . import badfiles as bad
from .conftest import png_with_declared_size, textured

CUTS = 5  # truncations at random offsets of each whole file
FLIPS = 3  # copies with random bytes changed


@dataclass
class Corpus:
    folder: Path
    candidates: list[str] = field(default_factory=list)  # names the scan looks at (image extensions)
    expected: dict[str, bool] = field(default_factory=dict)  # name -> trains?
    generated: int = 0  # cut and flipped files


def _frames(fmt: str, **options: object) -> bytes:
    frames = [textured((64, 48), seed) for seed in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, fmt, save_all=True, append_images=frames[1:], **options)
    return buffer.getvalue()


def whole_files() -> dict[str, bytes]:
    """One file per supported format and the modes worth telling apart, each of which trains."""
    e = bad.encoded
    files = {
        "jpeg-rgb.jpg": e("JPEG"),
        "jpeg-grey.jpg": e("JPEG", mode="L"),
        "jpeg-cmyk.jpg": e("JPEG", mode="CMYK"),
        "jpeg-progressive.jpg": e("JPEG", progressive=True),
        "jpeg-big.jpg": e("JPEG", (640, 480)),  # big enough that check decodes it at a reduced scale
        "mpo.jpg": _frames("MPO"),
        "png-rgb.png": e("PNG"),
        "png-rgba.png": e("PNG", mode="RGBA"),
        "png-palette.png": e("PNG", mode="P"),
        "png-16bit.png": e("PNG", mode="I;16"),
        "png-grey-alpha.png": e("PNG", mode="LA"),
        "apng.png": _frames("PNG"),
        "webp-lossy.webp": e("WEBP"),
        "webp-lossless.webp": e("WEBP", lossless=True),
        "webp-animated.webp": _frames("WEBP"),
        "gif.gif": e("GIF"),
        "gif-animated.gif": _frames("GIF"),
        "bmp-rgb.bmp": e("BMP"),
        "bmp-palette.bmp": e("BMP", mode="P"),
        "tiff-raw.tif": e("TIFF"),
        "tiff-deflate.tif": e("TIFF", compression="tiff_deflate"),
        "tiff-lzw.tif": e("TIFF", compression="tiff_lzw"),
        "tiff-packbits.tif": e("TIFF", compression="packbits"),
        "tiff-jpeg.tif": e("TIFF", compression="jpeg"),
    }
    if features.check("avif"):
        files["avif.avif"] = e("AVIF")
    return files


def build(folder: Path, seed: int = 14) -> Corpus:
    """Write the corpus into `folder` (a fresh one)."""
    rng = random.Random(seed)
    corpus = Corpus(folder)
    folder.mkdir(parents=True, exist_ok=True)

    def add(name: str, trains: bool | None) -> Path:
        corpus.candidates.append(name)
        if trains is not None:
            corpus.expected[name] = trains
        return folder / name

    for name, data in whole_files().items():
        stem, ext = os.path.splitext(name)
        bad.write(add(name, True), data)
        for i in range(CUTS):
            bad.write(add(f"{stem}-cut{i}{ext}", None), data[: rng.randrange(1, len(data))])
        for i in range(FLIPS):
            bad.write(add(f"{stem}-flip{i}{ext}", None), bad.mutated(data, rng))
        corpus.generated += CUTS + FLIPS

    # Sizes and shapes (buckets of 64x64 only: up to 4:1 is taken).
    bad.write(add("tiny-1x1.png", True), bad.encoded("PNG", (1, 1)))
    bad.write(add("tiny-2x3.png", True), bad.encoded("PNG", (2, 3)))
    bad.strip_png(add("four-to-one.png", True), 16, 64)
    bad.strip_png(add("five-to-one.png", False), 50, 10)
    bad.strip_png(add("strip-1x50000.png", False), 1, 50_000)
    bad.strip_png(add("line-5000x1.png", False), 5000, 1)
    bad.strip_png(add("thread-1x20000000.png", False), 1, 20_000_000)
    png_with_declared_size(add("bomb.png", False), 20_000, 20_000)
    png_with_declared_size(add("bomb-warning-zone.png", False), 10_000, 10_000)
    huge = bad.write(add("huge-file.png", False), bad.encoded("PNG"))
    os.truncate(huge, 3 << 29)  # 1.5 GiB, sparse: over the 1 GiB an image file may have
    bad.wmf_zero_size(add("zero-size.png", False))

    # Wrong extensions: supported content trains, anything else is not opened.
    bad.write(add("png-named.jpg", True), bad.encoded("PNG"))
    bad.write(add("jpeg-named.png", True), bad.encoded("JPEG"))
    bad.write(add("webp-named.bmp", True), bad.encoded("WEBP"))
    for name, fmt, options in (("ppm.png", "PPM", {}), ("tga.jpg", "TGA", {}), ("pcx.png", "PCX", {}),
                               ("sgi.bmp", "SGI", {}), ("ico.png", "ICO", {}), ("qoi.png", "QOI", {}),
                               ("dds.webp", "DDS", {}), ("xbm.gif", "XBM", {"mode": "1"})):
        bad.write(add(name, False), bad.encoded(fmt, **options))  # type: ignore[arg-type]
    if features.check("jpg_2000"):
        bad.write(add("jpeg2000.png", False), bad.encoded("JPEG2000"))
    bad.eps(add("eps.png", False))
    bad.psd(add("psd.jpg", False))
    bad.psd(add("layers.psd", False))
    bad.write(add("phone.heic", False), b"\x00\x00\x00\x18ftypheic" + b"\x00" * 100)

    # Files that are not regular, empty or not images.
    bad.fifo(add("fifo.png", False))
    bad.link(add("devzero.png", False), "/dev/zero")
    bad.link(add("devnull.jpg", False), "/dev/null")
    bad.link(add("dangling.png", False), folder / "nowhere.png")
    bad.write(add("empty.png", False), b"")
    bad.write(add("text.png", False), b"just some notes\n")

    # The files issue 14 found check and train disagreeing on.
    bad.truncated(add("cut.bmp", False), "BMP")
    bad.truncated(add("cut.tif", False), "TIFF")
    bad.tiff_decoder_rejects(add("decoder-rejects.tif", False))
    bad.corrupt_png_clean_end(add("corrupt-clean-end.png", False))
    bad.gif_fake_trailer(add("fake-trailer.gif", False))
    bad.apng(add("apng-first-frame-broken.png", False), broken_frame=0)
    bad.apng(add("apng-second-frame-broken.png", True), broken_frame=1)
    bad.bmp_oversize_palette(add("oversize-palette.bmp", False))
    bad.jpeg_corrupt_exif(add("exif-warning.jpg", True))
    bad.tiff_bad_tag(add("tag-warning.tif", True))

    # Good images whose captions are hostile: the image trains, the caption is not read.
    hostile = (("caption-fifo", lambda p: bad.fifo(p)), ("caption-devzero", lambda p: bad.link(p, "/dev/zero")),
               ("caption-huge", lambda p: p.write_bytes(b"x" * (2 << 20))))
    for seed, (name, make) in enumerate(hostile):
        bad.write(add(f"{name}.png", True), bad.encoded("PNG", seed=seed + 7))
        make(folder / f"{name}.txt")
    return corpus
