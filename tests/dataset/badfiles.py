"""Broken, exotic and hostile image files, made byte by byte in the tests (nothing downloaded).

Each maker writes one file at `path` and returns it. The kinds are those issue 14 found
`check` and `train` disagreeing on, plus what a generated corpus mixes them with.
"""

from __future__ import annotations

import io
import os
import random
import struct
import zlib
from pathlib import Path


from .conftest import textured


def encoded(fmt: str, size: tuple[int, int] = (64, 48), seed: int = 0, mode: str = "RGB", **options: object) -> bytes:
    """A textured picture encoded by Pillow as `fmt`."""
    image = textured(size, seed)
    if mode != "RGB":
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def strip_png(path: Path, width: int, height: int) -> Path:
    """A valid grey PNG of width x height (a 1x50,000 strip is 181 bytes), streamed so 20 M rows stay small."""
    packer = zlib.compressobj(9)
    row = b"\x00" + b"\x80" * width  # filter byte + grey pixels
    rows_per_block = max(1, (1 << 20) // len(row))
    parts = []
    done = 0
    while done < height:
        count = min(rows_per_block, height - done)
        parts.append(packer.compress(row * count))
        done += count
    parts.append(packer.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return write(path, b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", b"".join(parts))
                 + _chunk(b"IEND", b""))


def truncated(path: Path, fmt: str, keep: float = 0.5, **options: object) -> Path:
    """The first `keep` of an encoded file: no end marker for BMP and TIFF to give it away."""
    data = encoded(fmt, (64, 48), **options)
    return write(path, data[: max(1, int(len(data) * keep))])


def corrupt_png_clean_end(path: Path) -> Path:
    """A PNG whose pixel data is damaged but that still ends with a proper IEND."""
    data = bytearray(encoded("PNG", (200, 150)))
    start = data.find(b"IDAT") + 40
    for index in range(start, start + 40):
        data[index] ^= 0x55
    return write(path, bytes(data))


def gif_fake_trailer(path: Path) -> Path:
    """Half a GIF with the ';' trailer put back, so its end looks right."""
    data = encoded("GIF", (200, 150))
    return write(path, data[: len(data) // 2] + b";")


def bmp_oversize_palette(path: Path) -> Path:
    """An 8-bit BMP claiming 1000 palette colours (ValueError: invalid palette size when decoded)."""
    data = bytearray(encoded("BMP", (16, 16), mode="P"))
    struct.pack_into("<I", data, 46, 1000)  # biClrUsed
    return write(path, bytes(data))


def tiff_decoder_rejects(path: Path) -> Path:
    """A deflate TIFF with a sound header and a damaged strip (libtiff: decoder error)."""
    data = bytearray(encoded("TIFF", compression="tiff_deflate"))
    for index in range(16, 40):
        data[index] ^= 0xA5
    return write(path, bytes(data))


def apng(path: Path, broken_frame: int | None) -> Path:
    """A three-frame APNG; broken_frame 0 damages the default image (what trains), 1 the second frame."""
    frames = [textured((64, 48), seed) for seed in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "PNG", save_all=True, append_images=frames[1:])
    data = bytearray(buffer.getvalue())
    if broken_frame is not None:
        start = data.find(b"IDAT" if broken_frame == 0 else b"fdAT") + 10
        for index in range(start, start + 20):
            data[index] ^= 0xFF
    return write(path, bytes(data))


def wmf_zero_size(path: Path) -> Path:
    """A placeable Windows metafile header announcing 0x0 pixels: Pillow opens it as a 0x0 WMF image."""
    header = b"\xd7\xcd\xc6\x9a\x00\x00" + struct.pack("<hhhhH", 0, 0, 0, 0, 1440) + b"\0" * 6
    return write(path, header + b"\x01\x00\x09\x00\x00\x03" + b"\0" * 12)


def psd(path: Path) -> Path:
    """A minimal 4x4 RGB Photoshop document (Pillow decodes PSD by content)."""
    header = b"8BPS" + struct.pack(">H", 1) + b"\0" * 6 + struct.pack(">HIIHH", 3, 4, 4, 8, 3)
    body = struct.pack(">I", 0) * 3 + struct.pack(">H", 0) + b"\x80" * 48
    return write(path, header + body)


def eps(path: Path) -> Path:
    """An EPS file (Pillow reads its header; decoding it runs Ghostscript where installed)."""
    return write(path, b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 64 48\n0 0 moveto 64 48 lineto stroke\n%%EOF\n")


SHORT_EXIF = b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x05\x00\x12\x01\x03\x00\x01\x00\x00\x00\x06\x00"


def jpeg_corrupt_exif(path: Path, seed: int = 0) -> Path:
    """A sound JPEG whose EXIF block is cut short: Pillow warns "Corrupt EXIF data" and decodes it."""
    return write(path, encoded("JPEG", seed=seed, exif=SHORT_EXIF))


def tiff_bad_tag(path: Path) -> Path:
    """A sound TIFF whose description tag claims more data than the file has: Pillow warns and decodes it."""
    data = bytearray(encoded("TIFF", description="hello"))
    offset = struct.unpack_from("<I", data, 4)[0]
    for index in range(struct.unpack_from("<H", data, offset)[0]):
        entry = offset + 2 + 12 * index
        if struct.unpack_from("<H", data, entry)[0] == 270:
            struct.pack_into("<I", data, entry + 4, 100_000)
    return write(path, bytes(data))


def fifo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    return path


def link(path: Path, target: str | Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, path)
    return path


def mutated(data: bytes, rng: random.Random, flips: int = 6) -> bytes:
    """`data` with a few bytes past the first 8 XOR-ed at random places."""
    out = bytearray(data)
    for _ in range(flips):
        index = rng.randrange(min(8, len(out) - 1), len(out))
        out[index] ^= rng.randrange(1, 256)
    return bytes(out)
