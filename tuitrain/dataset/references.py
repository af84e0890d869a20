"""Reference images paired with training images, for editing models (FLUX.1 Kontext): found without decoding.

A concept's `references` folder holds one image per training image, with the same file stem (`cat.png` ->
`references/cat.jpg`, any image extension): the model learns to turn the reference into the training image
under its caption. `tuitrain check` and the trainer use these rules, so the pre-flight names every missing
or mismatched pair before a run starts. Torch-free, like masks.py, which this follows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tuitrain.dataset.masks import checked_sibling
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
    path = next((p for ext in EXTENSIONS for p in (folder / (image.path.stem + ext),
                                                  folder / (image.path.stem + ext.upper())) if p.is_file()), None)
    if path is None:
        return None
    return ReferenceFile(path, *checked_sibling(path, image, "reference", "",
                                                "a reference must have its image's aspect ratio"))


def reference_problem(image: ImageInfo, folder: Path) -> str:
    """Why `image` cannot train as an edit pair ("" when its reference is usable): the usable-image rule's part."""
    found = find_reference(image, folder)
    if found is None:
        return f"no reference image {image.path.stem}.* in {folder} (an edit pair needs one with the same name)"
    return found.problem
