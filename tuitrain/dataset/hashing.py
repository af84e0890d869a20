"""Content hashes for finding duplicates: SHA-256 for exact copies, dHash for near copies.

The perceptual hash is written here (a dHash on a 9x8 grey thumbnail) instead
of using imagehash, which pulls in numpy and scipy: the TUI side stays light.
Hashing decodes every image, which is also the pre-flight's full check that
each file really decodes (a truncated file fails here).
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from tuitrain.dataset.decode import MAX_IMAGE_FILE_BYTES, load_rgb
from tuitrain.dataset.fsutil import open_regular
from tuitrain.dataset.pillow_warnings import captured

HASH_BITS = 128  # dhash's width
NEAR_DUPLICATE_DISTANCE = 12  # of 128 bits; resized or re-saved copies land at 0-8
_HASH_DRAFT = (64, 64)  # JPEGs decode at 1/8 scale or so: plenty for a 9x8 hash


@dataclass(frozen=True)
class ImageHashes:
    """Hashes of one file, or why its pixels could not be decoded."""

    sha256: str | None = None
    dhash: int | None = None
    error: str | None = None
    warnings: tuple[str, ...] = ()  # what Pillow warned about while decoding


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open_regular(path, max_bytes=MAX_IMAGE_FILE_BYTES) as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def dhash(image: Image.Image) -> int:
    """128-bit difference hash: is each pixel of a 9x8 grey thumbnail brighter than its right neighbour,
    then of an 8x9 one than the pixel below it.

    The row half alone (64 bits) says little about pictures with flat areas, where equal
    neighbours give 0 bits: the demo's clearly different shapes landed 4-6 bits apart,
    as close as re-saved copies. With the column half they are 19 or more apart.
    """
    grey = image.convert("L")
    wide = grey.resize((9, 8), Image.Resampling.BOX).tobytes()  # one byte per pixel in mode L
    tall = grey.resize((8, 9), Image.Resampling.BOX).tobytes()
    bits = 0
    for row in range(8):
        for col in range(8):
            bits = (bits << 1) | (wide[row * 9 + col] > wide[row * 9 + col + 1])
    for row in range(8):
        for col in range(8):
            bits = (bits << 1) | (tall[row * 8 + col] > tall[(row + 1) * 8 + col])
    return bits


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def hash_file(path: Path) -> ImageHashes:
    """Both hashes of one image; never raises (a failure is returned as `error`)."""
    try:
        sha = file_sha256(path)
    except OSError as error:
        return ImageHashes(error=f"cannot read: {error.strerror or error}")
    said: list[str] = []
    try:
        image = load_rgb(path, draft_size=_HASH_DRAFT, notes=said)
    except PermissionError:
        return ImageHashes(sha256=sha, error="permission denied")
    except Exception as error:  # any decoder failure is a property of the file, reported as such
        return ImageHashes(sha256=sha, error=f"cannot decode: {error}", warnings=tuple(said))
    return ImageHashes(sha256=sha, dhash=dhash(image), warnings=tuple(said))


def hash_files(paths: Sequence[Path], *, workers: int | None = None) -> list[ImageHashes]:
    """hash_file for many files on a few threads (Pillow and hashlib release the GIL while working)."""
    workers = workers or min(4, os.cpu_count() or 1)
    with captured():  # the warnings hook once for the batch (each file still gets its own notes)
        if len(paths) < 2 or workers == 1:
            return [hash_file(path) for path in paths]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tuitrain-hash") as pool:
            return list(pool.map(hash_file, paths))


def exact_duplicates(hashes: Iterable[tuple[Path, str]]) -> list[list[Path]]:
    """Groups of files with identical bytes, each sorted, groups sorted by their first file."""
    by_digest: dict[str, list[Path]] = defaultdict(list)
    for path, digest in hashes:
        by_digest[digest].append(path)
    return sorted((sorted(group) for group in by_digest.values() if len(group) > 1), key=lambda g: g[0])


def near_duplicates(
    hashes: Sequence[tuple[Path, int]], *, max_distance: int = NEAR_DUPLICATE_DISTANCE
) -> list[list[Path]]:
    """The groups of near_duplicate_groups, without the distances."""
    return [[path for path, _ in group] for group in near_duplicate_groups(hashes, max_distance=max_distance)]


def near_duplicate_groups(
    hashes: Sequence[tuple[Path, int]], *, max_distance: int = NEAR_DUPLICATE_DISTANCE
) -> list[list[tuple[Path, int]]]:
    """Groups of look-alike files, each file with its distance in bits to the group's representative.

    Files are taken in path order; each joins the nearest representative within
    max_distance bits, or becomes one. Linking every close pair instead (single
    linkage) chained clearly different pictures into one group through neighbours
    (a~b, b~c: a and c 10 bits apart), so the group said nothing about any two of them.
    The representative is the group's first path; groups are sorted by it.

    Comparing every pair made `check` quadratic in images (2,000 small concepts: most of
    its 32 s, issue 14). Equal hashes (the same file in two concepts, flat pictures) are
    one entry; a file is compared only with the representatives sharing one of
    max_distance + 1 bit bands (hashes within max_distance bits differ in at most
    max_distance bands, so they share one): near-linear in practice.
    """
    by_value: dict[int, list[Path]] = defaultdict(list)
    for path, value in sorted(hashes, key=lambda item: item[0]):
        by_value[value].append(path)
    values = list(by_value)  # in order of their first path

    bands = max_distance + 1
    width = max([1, *(value.bit_length() for value in values)])  # the bits these hashes use, HASH_BITS at most
    edges = [width * band // bands for band in range(bands + 1)]
    buckets: dict[tuple[int, int], list[int]] = defaultdict(list)
    members: dict[int, list[tuple[int, int]]] = {}  # representative -> (value index, distance)
    for index, value in enumerate(values):
        keys = [(band, (value >> edges[band]) & ((1 << (edges[band + 1] - edges[band])) - 1)) for band in range(bands)]
        candidates = {other for key in keys for other in buckets.get(key, ())}
        scored = sorted(((value ^ values[other]).bit_count(), other) for other in candidates)
        if scored and scored[0][0] <= max_distance:
            distance, representative = scored[0]
            members[representative].append((index, distance))
            continue
        members[index] = [(index, 0)]
        for key in keys:
            buckets[key].append(index)

    groups = []
    for group in members.values():
        paths = sorted((path, distance) for index, distance in group for path in by_value[values[index]])
        if len(paths) > 1:
            groups.append(paths)
    return sorted(groups, key=lambda g: g[0][0])
