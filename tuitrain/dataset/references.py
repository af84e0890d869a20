"""Reference images paired with training images, for editing models (FLUX.1 Kontext): found without decoding.

A concept's `references` folder holds one image per training image, with the same file stem (`cat.png` ->
`references/cat.jpg`, any image extension): the model learns to turn the reference into the training image
under its caption. `tuitrain check` and the trainer use these rules, so the pre-flight names every missing
or mismatched pair before a run starts. Torch-free, like masks.py, which this follows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tuitrain.dataset.scan import ImageInfo

# The extensions tried for a reference, in this order (the first that exists is the pair).
EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".avif", ".jxl")


@dataclass(frozen=True)
class ReferenceFile:
    """A sample's reference image, identified like images for the latent cache."""

    path: Path
    file_size: int
    mtime_ns: int
    problem: str = ""  # why it cannot be used (unreadable, another aspect ratio); the sample is then left out


def find_reference(image: ImageInfo, folder: Path) -> ReferenceFile | None:
    """The image's reference in `folder` (None: it has none), its header checked. The reference is resized to
    its image's size, so only the aspect ratio must match (within 1 %)."""
    from tuitrain.dataset.decode import read_header

    path = next((p for ext in EXTENSIONS for p in (folder / (image.path.stem + ext),
                                                  folder / (image.path.stem + ext.upper())) if p.is_file()), None)
    if path is None:
        return None
    st = path.stat()
    try:
        header = read_header(path)
    except Exception as exc:  # PIL's errors for a broken file are many; the message says which file
        return ReferenceFile(path, st.st_size, st.st_mtime_ns, f"reference {path} cannot be read ({exc})")
    if abs(header.width * image.height - header.height * image.width) > 0.01 * image.width * image.height:
        return ReferenceFile(path, st.st_size, st.st_mtime_ns, (
            f"reference {path} is {header.width}x{header.height} but its image {image.path.name} is "
            f"{image.width}x{image.height}: a reference must have its image's aspect ratio"))
    return ReferenceFile(path, st.st_size, st.st_mtime_ns)


def reference_problem(image: ImageInfo, folder: Path) -> str:
    """Why `image` cannot train as an edit pair ("" when its reference is usable): the usable-image rule's part."""
    found = find_reference(image, folder)
    if found is None:
        return f"no reference image {image.path.stem}.* in {folder} (an edit pair needs one with the same name)"
    return found.problem
