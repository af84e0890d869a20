"""Class images (DreamBooth's prior preservation): which ones a regularisation concept still lacks.

A concept with `class_images = N` is filled up to N images by the trainer before training,
each drawn by the base model from the concept's instance_prompt at the concept's resolution
(square) and saved as class-NNNNN.png in its folder, where they stay: a later run, `check`
and the review screen see them as ordinary images. Until then the pre-flight counts the
missing ones as the square images they will be, so it plans the same steps the trainer runs.
Both sides name them with `missing_names`.
"""

from __future__ import annotations

from pathlib import Path

from tuitrain.dataset.scan import ConceptScan, ImageInfo


def missing_names(folder: Path, present: int, wanted: int) -> list[Path]:
    """The files still to draw when `folder` holds `present` images and should hold `wanted`: the first
    free class-NNNNN.png names, in order."""
    names: list[Path] = []
    number = 0
    while len(names) < wanted - present:
        path = folder / f"class-{number:05d}.png"
        if not path.exists():
            names.append(path)
        number += 1
    return names


def planned_images(scan: ConceptScan, resolution: int) -> list[ImageInfo]:
    """The class images `scan`'s concept still lacks, as the square images the trainer will draw."""
    spec = scan.spec
    if not spec.class_images or spec.role != "regularisation":
        return []
    return [
        ImageInfo(path=path, width=resolution, height=resolution, format="PNG", mode="RGB", rel=path.name)
        for path in missing_names(Path(spec.path), len(scan.images), spec.class_images)
    ]
