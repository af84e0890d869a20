"""What the dataset engine is asked to look at: concept folders and bucket settings.

These are plain frozen dataclasses so the config layer (pydantic) can build them
without the dataset code depending on it.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

CaptionSource = Literal["per-image", "prompt-file", "filename", "instance"]
Role = Literal["train", "regularisation", "validation"]

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
    role: Role = "train"  # regularisation: prior-preservation images, balanced to the train samples (balance.py)
    loss_weight: float = 1.0
    samples_per_epoch: int | None = None  # balance by samples instead of repeats
    resolution: int | None = None  # None: the data's BucketSpec.resolution
    caption_dropout: float | None = None  # None: data.caption_dropout (likewise flip, crop_jitter)
    flip: bool | None = None
    crop_jitter: bool | None = None
    class_images: int = 0  # regularisation: images the base model draws into the folder before training
    references: Path | None = None  # editing models: reference images paired by file stem (dataset.references)

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

    def for_concept(self, concept: ConceptSpec) -> BucketSpec:
        """The buckets of one concept: these, around the concept's own resolution when it sets one."""
        if concept.resolution is None or concept.resolution == self.resolution:
            return self
        return dataclasses.replace(self, resolution=concept.resolution)


def repeats_from_folder_name(folder_name: str) -> int | None:
    """Repeat count of a kohya-style folder name ("10_faery" -> 10), None if it has none."""
    match = _REPEATS_PREFIX.match(folder_name)
    return int(match.group(1)) if match else None


# kohya_ss's folder preparation: <parent>/img/<N_name>/, <parent>/reg/<N_class>/, plus log/ and model/ for its outputs.
KOHYA_TRAIN_FOLDER = "img"
KOHYA_REG_FOLDER = "reg"
KOHYA_OUTPUT_FOLDERS = frozenset({"log", "model"})


def discover_concepts(data_dir: Path, **options: object) -> list[ConceptSpec]:
    """Concepts of a `--data DIR` folder.

    kohya users point at a parent folder holding "10_faery"-style sub-folders;
    others point straight at a folder of images. Each non-hidden sub-folder is a
    concept, and so is DIR itself when it holds images directly. `options` are
    passed to every ConceptSpec (caption=..., caption_extension=..., ...); with
    recursive=True, DIR is one concept (its sub-folders would be counted twice).

    kohya_ss's layout is recognised too: a DIR holding `reg/` (regularisation images in
    "1_class"-style sub-folders) and `img/` (the training concepts), with its `log/` and
    `model/` output folders ignored; `reg/`'s concepts get role = "regularisation". A DIR
    with `reg/` but no `img/` takes its other sub-folders as the training concepts.
    """
    data_dir = Path(data_dir)
    if options.get("recursive"):
        return [ConceptSpec(path=data_dir, **options)]  # type: ignore[arg-type]
    listing = _listing(data_dir)
    if listing is None:  # unreadable, too long a name: the scan of DIR says so, naming it
        return [ConceptSpec(path=data_dir, **options)]  # type: ignore[arg-type]
    has_own_images, subfolders = listing
    by_name = {folder.name.lower(): folder for folder in subfolders}
    reg, img = by_name.get(KOHYA_REG_FOLDER), by_name.get(KOHYA_TRAIN_FOLDER)
    kohya = not has_own_images and (reg is not None or (img is not None and _holds_only_folders(img)))
    if not kohya:
        return _plain_concepts(data_dir, has_own_images, subfolders, options)
    if img is not None:
        train = discover_concepts(img, **options)
    else:
        rest = [f for f in subfolders if f.name.lower() not in {KOHYA_REG_FOLDER} | KOHYA_OUTPUT_FOLDERS]
        train = _plain_concepts(data_dir, False, rest, options) if rest else []
    regularisation = [] if reg is None else [
        dataclasses.replace(spec, role="regularisation") for spec in discover_concepts(reg, **options)
    ]
    return train + regularisation


def _listing(folder: Path) -> tuple[bool, list[Path]] | None:
    """(whether `folder` holds images itself, its non-hidden sub-folders), None when it cannot be listed."""
    from tuitrain.dataset.scan import IMAGE_EXTENSIONS, is_mask_file

    has_own_images = False
    subfolders: list[Path] = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    subfolders.append(Path(entry.path))
                elif Path(entry.name).suffix.lower() in IMAGE_EXTENSIONS and not is_mask_file(entry.name):
                    has_own_images = True
    except (OSError, ValueError):
        return None
    return has_own_images, sorted(subfolders)


def _holds_only_folders(folder: Path) -> bool:
    """kohya's img/: concept sub-folders and no images of its own."""
    listing = _listing(folder)
    return listing is not None and not listing[0] and bool(listing[1])


def _plain_concepts(data_dir: Path, has_own_images: bool, subfolders: list[Path],
                    options: dict[str, object]) -> list[ConceptSpec]:
    concepts: list[ConceptSpec] = []
    if has_own_images or not subfolders:
        concepts.append(ConceptSpec(path=data_dir, **options))  # type: ignore[arg-type]
    for folder in sorted(subfolders):
        concepts.append(ConceptSpec(path=folder, **options))  # type: ignore[arg-type]
    return concepts
