"""Fixtures for the dataset engine tests: every image is generated here, in tmp dirs."""

from __future__ import annotations

import builtins
import errno
import io
import os
import random
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    """A private scan cache, so tests never touch (or depend on) the user's cache."""
    return tmp_path / "scan-cache"


@pytest.fixture(autouse=True)
def _no_user_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A test that forgets cache_dir must still not write into the real ~/.cache.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


def textured(size: tuple[int, int], seed: int = 0, mode: str = "RGB") -> Image.Image:
    """A blurry random picture: distinct per seed for perceptual hashes, cheap to make."""
    rng = random.Random(seed)
    small = Image.new("RGB", (6, 6))
    small.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(36)])
    image = small.resize(size, Image.Resampling.BILINEAR)
    return image if mode == "RGB" else image.convert(mode)


def save(path: Path, size: tuple[int, int] = (64, 48), seed: int = 0, **options: object) -> Path:
    """Save a textured image at path (format from the extension); returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    textured(size, seed).save(path, **options)
    return path


@pytest.fixture
def make_image() -> Callable[..., Path]:
    return save


def png_with_declared_size(path: Path, width: int, height: int) -> Path:
    """A tiny valid-looking PNG whose header claims width x height: a decompression bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = zlib.compress(b"\x00" * 64)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b""))
    return path


def make_unreadable(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """chmod 000; as root (who reads anyway) also make opening it fail the way the OS would."""
    os.chmod(path, 0)
    if os.geteuid() != 0:
        return
    real_open = builtins.open
    blocked = os.path.abspath(path)

    def guarded_open(file, *args, **kwargs):  # type: ignore[no-untyped-def]
        if isinstance(file, (str, bytes, os.PathLike)) and os.path.abspath(os.fsdecode(file)) == blocked:
            raise PermissionError(errno.EACCES, "Permission denied", os.fsdecode(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr(io, "open", guarded_open)


def tree_snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under folder (hidden ones too): relative name -> (bytes, mtime_ns); links as links."""
    snapshot = {}
    for root, _dirs, names in os.walk(folder):
        for name in names:
            path = Path(root) / name
            if path.is_symlink():  # the link itself, which may point nowhere
                content = b"symlink -> " + os.fsencode(os.readlink(path))
            else:
                content = path.read_bytes()
            snapshot[path.relative_to(folder).as_posix()] = (content, path.lstat().st_mtime_ns)
    return snapshot


def dir_listing(folder: Path) -> set[str]:
    """Every file and folder under folder, as relative paths."""
    found = set()
    for root, dirs, names in os.walk(folder):
        for name in dirs + names:
            found.add((Path(root) / name).relative_to(folder).as_posix())
    return found
