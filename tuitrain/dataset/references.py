"""Reference images paired with training images, for editing models (FLUX.1 Kontext): found without decoding.

A concept's `references` folder holds one image per training image, with the same file stem (`cat.png` ->
`references/cat.jpg`, any image extension): the model learns to turn the reference into the training image
under its caption. `tuitrain check` and the trainer use these rules, so the pre-flight names every missing
or mismatched pair before a run starts. Torch-free, like masks.py, which this follows.

Only the stem pairs a reference with its image, so one reference may serve several images (`a/cat.png` and
`b/cat.png` in a recursive concept, or `cat.png` beside `cat.jpg`): culling an image never moves its
reference, and a reference left without any image is only reported, never removed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tuitrain.dataset.masks import checked_sibling
from tuitrain.dataset.scan import ImageInfo

# The extensions tried for a reference, in this order (the first that exists is the pair).
EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".avif", ".jxl")
# How the problems below begin: the review tells a reference problem from an unreadable image by these.
_MISSING = "no reference image "
_MISMATCHED = "reference "


@dataclass(frozen=True)
class ReferenceFile:
    """A sample's reference image, identified like images for the latent cache."""

    path: Path
    file_size: int
    mtime_ns: int
    problem: str = ""  # why it cannot be used (unreadable, another aspect ratio); the sample is then left out
    size: tuple[int, int] | None = None  # (width, height) as its header says; None when the header cannot be read


def find_reference(image: ImageInfo, folder: Path) -> ReferenceFile | None:
    """The image's reference in `folder` (None: it has none), its header checked. The reference is resized to
    its image's size, so only the aspect ratio must match (within 1 %)."""
    path = next((p for ext in EXTENSIONS for p in (folder / (image.path.stem + ext),
                                                  folder / (image.path.stem + ext.upper())) if p.is_file()), None)
    if path is None:
        return None
    file_size, mtime_ns, problem = checked_sibling(path, image, _MISMATCHED.strip(), "",
                                                   "a reference must have its image's aspect ratio")
    return ReferenceFile(path, file_size, mtime_ns, problem, _header_size(path))


def _header_size(path: Path) -> tuple[int, int] | None:
    """The reference's (width, height) for the review's label and the size note (None: unreadable)."""
    from tuitrain.dataset.decode import read_header

    try:
        header = read_header(path)
    except Exception:  # checked_sibling has said why already
        return None
    return header.width, header.height


def reference_problem(image: ImageInfo, folder: Path) -> str:
    """Why `image` cannot train as an edit pair ("" when its reference is usable): the usable-image rule's part."""
    found = find_reference(image, folder)
    if found is None:
        return f"{_MISSING}{image.path.stem}.* in {folder} (an edit pair needs one with the same name)"
    return found.problem


def is_reference_problem(reason: str) -> bool:
    """Whether a pre-flight reason (a file not used) is one of reference_problem's, not the image's own."""
    return reason.startswith((_MISSING, _MISMATCHED))


def size_note(image: ImageInfo, reference: ReferenceFile) -> str:
    """What the trainer does to a usable reference of another size than its image ("" when the sizes agree):
    it resizes it to the image's size, which softens a smaller one."""
    if reference.problem or reference.size is None or reference.size == image.size:
        return ""
    width, height = reference.size
    scale = image.width / width
    how = f"upscaled x{scale:.2f}" if scale > 1 else f"downscaled x{scale:.2f}"
    return f"reference {reference.path.name} is {width}x{height}: {how} to its image's {image.width}x{image.height}"


def unpaired_references(folder: Path, images: Iterable[Path]) -> list[Path]:
    """Images in the references folder whose stem no image of the concept has (never read by the trainer;
    e.g. the reference of an image culled). Sorted by name; [] when the folder cannot be listed."""
    return _unpaired(folder, {path.stem for path in images})


def _unpaired(folder: Path, stems: set[str]) -> list[Path]:
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError:
        return []
    return [Path(entry.path) for entry in entries
            if os.path.splitext(entry.name)[1].lower() in EXTENSIONS and os.path.splitext(entry.name)[0] not in stems
            and entry.is_file()]


def reference_warnings(folder: Path | None, images: Iterable[Path], *, listed: int = 3) -> list[str]:
    """A concept's warnings about its references folder as a whole: missing, or holding references no image
    pairs with (named, the first `listed`)."""
    return folder_warnings([("", folder, images)], listed=listed)[0]


def folder_warnings(concepts: Sequence[tuple[str, Path | None, Iterable[Path]]], *,
                    listed: int = 3) -> list[list[str]]:
    """Each concept's warnings about its references folder, for (name, references folder, image paths) in
    order: a missing folder is said on every concept that names it (none of its images has a reference); a
    folder several concepts share (`cull --references` gives every concept the same) holds the references of
    all their images, so what no image of any of them pairs with is said once, on the first of them."""
    warnings: list[list[str]] = [[] for _ in concepts]
    sharing: dict[Path, list[int]] = {}
    stems: dict[Path, set[str]] = {}
    for index, (_, folder, images) in enumerate(concepts):
        if folder is None:
            continue
        if not folder.is_dir():
            warnings[index].append(f"references folder {folder} does not exist: no image of this concept has its "
                                   "reference")
            continue
        key = folder.resolve()
        sharing.setdefault(key, []).append(index)
        stems.setdefault(key, set()).update(path.stem for path in images)
    for key, users in sharing.items():
        folder = concepts[users[0]][1]
        assert folder is not None
        unpaired = _unpaired(folder, stems[key])
        if not unpaired:
            continue
        names = ", ".join(path.name for path in unpaired[:listed]) + (", ..." if len(unpaired) > listed else "")
        count = len(unpaired)
        whose = ("this concept" if len(users) == 1
                 else "the concepts sharing it (" + ", ".join(concepts[i][0] for i in users) + ")")
        warnings[users[0]].append(f"{count} reference image{'s' if count != 1 else ''} in {folder} "
                                  f"pair{'' if count != 1 else 's'} with no image of {whose} (not used): {names}")
    return warnings
