"""What the dataset engine is asked to look at: concept folders and bucket settings.

These are plain frozen dataclasses so the config layer (pydantic) can build them
without the dataset code depending on it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

CaptionSource = Literal["per-image", "prompt-file", "filename", "instance"]

DEFAULT_PROMPT_FILE = "prompts.txt"

# kohya's convention: "10_faery" means 10 repeats of the concept "faery".
_REPEATS_PREFIX = re.compile(r"^(\d+)_(.+)$")


@dataclass(frozen=True)
class ConceptSpec:
    """One folder of training images and how its images are captioned.

    prompt_file: for caption="prompt-file"; relative paths are relative to the
    concept folder; None means ``<path>/prompts.txt``.
    """

    path: Path
    caption: CaptionSource = "per-image"
    repeats: int | None = None  # None: from a folder name like 10_faery, else 1
    caption_extension: str = ".txt"
    prompt_file: Path | None = None
    instance_prompt: str = ""
    recursive: bool = False
    name: str = ""  # display name; "" means the folder name without the NN_ prefix
    mask_suffix: str = "-masklabel.png"  # data.mask_suffix: mask files are not training images

    @property
    def display_name(self) -> str:
        if self.name:
            return self.name
        match = _REPEATS_PREFIX.match(Path(self.path).name)
        return match.group(2) if match else Path(self.path).name

    @property
    def effective_repeats(self) -> int:
        """Explicit repeats win over the folder name, so a config can override kohya naming."""
        if self.repeats is not None:
            return self.repeats
        return repeats_from_folder_name(Path(self.path).name) or 1

    @property
    def prompt_file_path(self) -> Path:
        if self.prompt_file is None:
            return Path(self.path) / DEFAULT_PROMPT_FILE
        return Path(self.path) / self.prompt_file  # an absolute prompt_file stays absolute


@dataclass(frozen=True)
class BucketSpec:
    """How images are fitted to training sizes.

    enabled=False centre-crops everything to resolution x resolution, which is
    also the simplest fix for buckets too small to fill a batch.
    """

    resolution: int = 512
    step: int = 64
    max_aspect: float = 2.0
    enabled: bool = True


def repeats_from_folder_name(folder_name: str) -> int | None:
    """Repeat count of a kohya-style folder name ("10_faery" -> 10), None if it has none."""
    match = _REPEATS_PREFIX.match(folder_name)
    return int(match.group(1)) if match else None


def discover_concepts(data_dir: Path, **options: object) -> list[ConceptSpec]:
    """Concepts of a `--data DIR` folder.

    kohya users point at a parent folder holding "10_faery"-style sub-folders;
    others point straight at a folder of images. Each non-hidden sub-folder is a
    concept, and so is DIR itself when it holds images directly. `options` are
    passed to every ConceptSpec (caption=..., caption_extension=..., ...); with
    recursive=True, DIR is one concept (its sub-folders would be counted twice).
    """
    from tuitrain.dataset.scan import IMAGE_EXTENSIONS, is_mask_file

    data_dir = Path(data_dir)
    if options.get("recursive"):
        return [ConceptSpec(path=data_dir, **options)]  # type: ignore[arg-type]
    concepts: list[ConceptSpec] = []
    has_own_images = False
    subfolders: list[Path] = []
    try:
        with os.scandir(data_dir) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    subfolders.append(Path(entry.path))
                elif Path(entry.name).suffix.lower() in IMAGE_EXTENSIONS and not is_mask_file(entry.name):
                    has_own_images = True
    except (OSError, ValueError):  # unreadable, too long a name: the scan of DIR says so, naming it
        return [ConceptSpec(path=data_dir, **options)]  # type: ignore[arg-type]
    if has_own_images or not subfolders:
        concepts.append(ConceptSpec(path=data_dir, **options))  # type: ignore[arg-type]
    for folder in sorted(subfolders):
        concepts.append(ConceptSpec(path=folder, **options))  # type: ignore[arg-type]
    return concepts
