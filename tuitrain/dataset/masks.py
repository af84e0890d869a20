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
    from tuitrain.dataset.decode import read_header

    path = image.path.with_name(image.path.stem + suffix)
    if not path.is_file():
        return None
    st = path.stat()
    try:
        header = read_header(path)
    except Exception as exc:  # PIL's errors for a broken file are many; the message says which file
        return MaskFile(path, st.st_size, st.st_mtime_ns, f"mask file {path} cannot be read ({exc}); fix or remove it")
    # The mask is resized with its image: only its aspect ratio must match.
    if abs(header.width * image.height - header.height * image.width) > 0.01 * image.width * image.height:
        return MaskFile(path, st.st_size, st.st_mtime_ns, (
            f"mask file {path} is {header.width}x{header.height} but its image {image.path.name} is "
            f"{image.width}x{image.height}: a mask must have its image's size (or at least its aspect ratio)"
        ))
    return MaskFile(path, st.st_size, st.st_mtime_ns)
