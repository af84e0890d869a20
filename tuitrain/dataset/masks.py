"""Mask files beside training images: found and checked without decoding them (no torch here).

`tuitrain check` and the trainer use the same rules, so a mask that would stop a
masked-loss run is reported by the pre-flight, not discovered at the trainer's start.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tuitrain.dataset.scan import ImageInfo


@dataclass(frozen=True)
class MaskFile:
    """A sample's mask (<image stem> + data.mask_suffix), identified like images for the latent cache."""

    path: Path
    file_size: int
    mtime_ns: int
    problem: str = ""  # why it cannot be used (unreadable, another shape); said when masks are used


def find_mask(image: ImageInfo, suffix: str) -> MaskFile | None:
    """The image's mask file, if it has one, with its header checked (a problem is kept, not raised:
    runs that use no masks are not stopped by one)."""
    path = image.path.with_name(image.path.stem + suffix)
    if not path.is_file():
        return None
    return MaskFile(path, *checked_sibling(path, image, "mask file", "; fix or remove it",
                                           "a mask must have its image's size (or at least its aspect ratio)"))


def checked_sibling(path: Path, image: ImageInfo, noun: str, unreadable_tail: str, rule: str) -> tuple[int, int, str]:
    """(size, mtime_ns, problem) of a file that goes with `image` (a mask, an editing pair's reference): its
    header read without decoding, and its aspect ratio within 1 % of the image's, since it is resized with
    it. problem is "" when it can be used."""
    from tuitrain.dataset.decode import read_header

    st = path.stat()
    try:
        header = read_header(path)
    except Exception as exc:  # PIL's errors for a broken file are many; the message says which file
        return st.st_size, st.st_mtime_ns, f"{noun} {path} cannot be read ({exc}){unreadable_tail}"
    if abs(header.width * image.height - header.height * image.width) > 0.01 * image.width * image.height:
        return st.st_size, st.st_mtime_ns, (f"{noun} {path} is {header.width}x{header.height} but its image "
                                            f"{image.path.name} is {image.width}x{image.height}: {rule}")
    return st.st_size, st.st_mtime_ns, ""
