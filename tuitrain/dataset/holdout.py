"""Which images are held out of training to score the eval loss: one rule for the trainer and the pre-flight.

Held out are every image of a `role = "validation"` concept, and `data.validation_split` of each training
concept's images, chosen by a hash of the image's path inside its concept folder. The hash (not a
seeded shuffle) keeps the choice the same on every run and every machine, whatever the training seed,
and adding images to a folder moves no image that was held out back into training unless the split
fraction asks for fewer (the lowest hashes stay lowest). Regularisation folders are never split.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tuitrain.dataset.scan import ConceptScan


def split_count(images: int, fraction: float) -> int:
    """How many of a concept's `images` a split of `fraction` holds out: rounded, at least one when
    the fraction is not 0, and never all of them (a concept keeps one image to train on)."""
    if fraction <= 0 or images < 2:
        return 0
    return min(images - 1, max(1, round(images * fraction)))


def _rank(path: Path, folder: Path) -> str:
    try:
        name = path.relative_to(folder).as_posix()
    except ValueError:
        name = path.name
    return hashlib.sha256(name.encode("utf-8")).hexdigest()


def split_images(paths: Sequence[Path], folder: Path, fraction: float) -> set[Path]:
    """The images of one training concept (in `folder`) that `fraction` holds out."""
    count = split_count(len(paths), fraction)
    return set(sorted(paths, key=lambda p: (_rank(p, folder), str(p)))[:count])


def held_out(role: str, paths: Sequence[Path], folder: Path, fraction: float) -> set[Path]:
    """The images of one concept kept out of training: all of a validation concept's, a training concept's
    split, none of a regularisation concept's."""
    if role == "validation":
        return set(paths)
    if role == "train":
        return split_images(paths, folder, fraction)
    return set()


def held_out_paths(scans: Sequence[ConceptScan], roles: dict[Path, str], fraction: float) -> list[Path]:
    """Every held-out image of scanned concepts (`roles`: each concept folder's role; unknown: train), in
    concept order: what the trainer scores and the pre-flight lists."""
    paths: list[Path] = []
    for scan in scans:
        images = [image.path for image in scan.images]
        held = held_out(roles.get(scan.spec.path, "train"), images, scan.spec.path, fraction)
        paths += [p for p in images if p in held]
    return paths
