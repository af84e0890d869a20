"""Images in sub-folders that no concept reads.

A kohya tree (`10_cat/`, `5_coffee/`) given as one plain concept has no image of its own: the
scan finds nothing and the run "cannot train" with no word about where the images are. The
pre-flight names those sub-folders and the two fixes (recursive = true, or one concept each).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tuitrain.dataset.spec import ConceptSpec

# Entries looked at per sub-folder at most: the hint must not cost a walk of a whole disk.
MAX_ENTRIES = 100_000


@dataclass(frozen=True)
class UnusedFolder:
    path: Path  # a direct sub-folder of `concept`'s folder
    concept: str  # the display name of the concept whose folder holds it
    images: int  # image files in it and below, none of which any concept reads


def unused_folders(concepts: Sequence[ConceptSpec]) -> list[UnusedFolder]:
    """Sub-folders of non-recursive concepts that hold images and are not concepts themselves
    (nor inside a recursive one); folders that are concepts are left out of the count below them."""
    from tuitrain.dataset.scan import IMAGE_EXTENSIONS, is_mask_file

    own = {_key(spec.path) for spec in concepts}
    whole_trees = [_key(spec.path) for spec in concepts if spec.recursive]
    found: list[UnusedFolder] = []
    for spec in concepts:
        if spec.recursive:
            continue
        for sub in _subfolders(Path(spec.path)):
            key = _key(sub)
            if key in own or any(_inside(key, tree) for tree in whole_trees):
                continue
            count = _count_images(sub, own, IMAGE_EXTENSIONS, lambda name, s=spec: is_mask_file(name, s.mask_suffix))
            if count:
                found.append(UnusedFolder(sub, spec.display_name, count))
    return found


def unused_summary(folders: Sequence[UnusedFolder]) -> str:
    """One line: how many images lie unused, and what to do about them."""
    images = sum(folder.images for folder in folders)
    subs = f"{len(folders)} sub-folder{'s' if len(folders) != 1 else ''}"
    hold = "hold" if len(folders) != 1 else "holds"
    names = sorted({folder.concept for folder in folders})
    of = ", ".join(f"'{name}'" for name in names)
    what = "1 image that is" if images == 1 else f"{images} images that are"
    return f"{subs} of concept {of} {hold} {what} not used: set recursive = true or add them as concepts"


def _key(path: Path | str) -> str:
    return os.path.abspath(os.fspath(path))


def _inside(path: str, tree: str) -> bool:
    return path == tree or path.startswith(tree.rstrip(os.sep) + os.sep)


def _subfolders(folder: Path) -> list[Path]:
    """Non-hidden direct sub-folders (the trash is hidden), symlinks not followed, as the scan does."""
    try:
        with os.scandir(folder) as entries:
            return sorted(Path(e.path) for e in entries if not e.name.startswith(".") and e.is_dir(follow_symlinks=False))
    except (OSError, ValueError):  # the scan of the concept itself says what is wrong with the folder
        return []


def _count_images(folder: Path, skip: set[str], extensions: frozenset[str], is_mask) -> int:  # type: ignore[no-untyped-def]
    count = seen = 0
    pending = [os.fspath(folder)]
    while pending and seen < MAX_ENTRIES:
        directory = pending.pop()
        try:
            with os.scandir(directory) as entries:
                listed = list(entries)
        except OSError:
            continue
        for entry in listed:
            seen += 1
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                if _key(entry.path) not in skip:  # a concept of its own: counted (or not) there
                    pending.append(entry.path)
            elif os.path.splitext(entry.name)[1].lower() in extensions and not is_mask(entry.name):
                count += 1
    return count
