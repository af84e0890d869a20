"""[data] and [[data.concepts]]: the training images, their captions and buckets."""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator, model_validator

from tuitrain.config.errors import quote
from tuitrain.config.fields import Section, option
from tuitrain.config.sections.common import a_possible_path

CaptionSource = Literal["per-image", "prompt-file", "filename", "instance"]


class Concept(Section):
    """One folder of training images and how to caption them."""

    group = "data"

    path: str = option(
        ...,
        "Folder of training images. Relative paths are relative to the config file.",
        level="essential",
    )
    name: str = option("", "Display name. Empty: the folder name without a leading 'NN_' repeat count.")
    caption: CaptionSource = option(
        "per-image",
        "Where captions come from: per-image (a text file next to each image), prompt-file (one "
        "prompt per line, picked at random), filename (the file name, numbering stripped, _ as "
        "spaces), instance (instance_prompt for every image).",
    )
    caption_extension: str = option(".txt", "Extension of per-image caption files.")
    prompt_file: str = option("", "Prompt file for caption = prompt-file (relative to the concept folder).")
    instance_prompt: str = option("", "Caption for every image when caption = instance (e.g. 'photo of sks dog').")
    repeats: int | None = option(
        None,
        "How many times each image is seen per epoch. Unset: taken from a folder name like "
        "'10_faery' (kohya style), else 1.",
        ge=1,
        le=10000,
    )
    recursive: bool = option(False, "Also take images from sub-folders.")
    role: Literal["train", "regularisation", "validation"] = option(
        "train",
        "What the folder is for: train (learned from); regularisation (prior-preservation / class images, kohya's "
        "reg folders: trained beside the others to keep the base model's idea of the class); validation (held out: "
        "never trained, scored at fixed noise at each save as the eval loss).",
    )
    references: str = option(
        "",
        "Editing models (model.flavour = 'kontext'): a folder of reference images, one per training image with "
        "the same file name (any image extension): the model learns to turn each reference into its image under "
        "the caption. Relative paths are relative to the config file. Empty: none (text-to-image).",
    )

    class_images: int = option(
        0,
        "Regularisation concepts: before training, the base model draws images from instance_prompt (the class "
        "prompt, e.g. 'photo of a dog') into this folder until it holds this many (DreamBooth's class images); "
        "they stay there, so later runs reuse them and the review screen shows them. 0: none drawn.",
        ge=0,
        le=100_000,
    )
    enabled: bool = option(True, "Train this concept; false keeps its table in the config but leaves its images out.")
    loss_weight: float = option(
        1.0,
        "Multiplies the loss of this concept's samples (kohya's prior_loss_weight for regularisation images, "
        "usually 1.0): below 1 the concept pulls less on the weights, above 1 more.",
        ge=0.0,
        le=100.0,
    )
    samples_per_epoch: int | None = option(
        None,
        "Balance by samples instead of repeats (OneTrainer's 'samples' balancing): this concept gives exactly "
        "this many samples per epoch whatever its image count, each image about samples / images times (which "
        "images get the extra visit changes every epoch). Unset: repeats decide. A regularisation concept "
        "with neither set is balanced to the train concepts' samples per epoch, as kohya does with reg images.",
        ge=1,
        le=10_000_000,
    )
    resolution: int | None = option(
        None,
        "Bucket this concept's images around this resolution instead of data.resolution (e.g. 512 for 1024 px "
        "images in an SD 1.5 run, or a lower one for a concept that should not dominate). Unset: data.resolution.",
        ge=64,
        le=4096,
    )
    caption_dropout: float | None = option(
        None, "data.caption_dropout for this concept's images. Unset: data.caption_dropout.", ge=0.0, le=1.0
    )
    # Literal[True, False] rather than bool: the form then offers true / false / unset (a switch has no unset).
    flip: Literal[True, False] | None = option(None, "data.flip for this concept's images. Unset: data.flip.")
    crop_jitter: Literal[True, False] | None = option(
        None, "data.crop_jitter for this concept's images. Unset: data.crop_jitter."
    )

    _paths_are_possible = field_validator("path", "prompt_file", "caption_extension", "references")(a_possible_path)

    @model_validator(mode="after")
    def _caption_needs(self) -> Concept:
        if self.caption == "instance" and not self.instance_prompt.strip():
            raise ValueError("instance_prompt: required when caption = 'instance'")
        if not self.caption_extension.startswith("."):
            raise ValueError(f"caption_extension: must start with '.', got {quote(self.caption_extension)}")
        if self.class_images and self.role != "regularisation":
            raise ValueError(f"class_images: only a role = 'regularisation' concept draws class images, this one is "
                             f"{quote(self.role)}")
        if self.class_images and (self.caption != "instance" or not self.instance_prompt.strip()):
            raise ValueError("class_images: they are drawn from the class prompt: set caption = 'instance' and "
                             "instance_prompt (e.g. 'photo of a dog')")
        if self.repeats is not None and self.samples_per_epoch is not None:
            raise ValueError(
                f"samples_per_epoch: balances the concept instead of repeats; set one of them, got repeats = "
                f"{self.repeats} and samples_per_epoch = {self.samples_per_epoch}"
            )
        if self.resolution is not None and self.resolution % 8:
            raise ValueError(
                f"resolution: must be a multiple of 8 (e.g. {round(self.resolution / 64) * 64}), got {self.resolution}"
            )
        return self


class DataSection(Section):
    group = "data"

    resolution: int = option(
        512,
        "Training resolution: images are bucketed to about resolution x resolution pixels.",
        level="essential",
        ge=64,
        le=4096,
    )
    concepts: list[Concept] = option(
        default_factory=list,
        help="Image folders to train on ([[data.concepts]] tables).",
        level="essential",
    )
    bucketing: bool = option(
        True, "Aspect-ratio buckets: train on each image at its own aspect ratio instead of a centre square."
    )
    bucket_step: int = option(64, "Bucket sides are multiples of this many pixels.", ge=8, le=256)
    max_aspect_ratio: float = option(2.0, "Widest (or tallest) bucket allowed, as long side / short side.", ge=1.0, le=8.0)
    flip: bool = option(False, "Random horizontal flip (do not use for asymmetric subjects or text).")
    crop_jitter: bool = option(False, "Random crop position inside the bucket instead of the centre.")
    shuffle_tags: bool = option(False, "Shuffle comma-separated tags of each caption every time it is used.")
    keep_tags: int = option(0, "With shuffle_tags: keep this many leading tags in place.", ge=0, le=100)
    caption_dropout: float = option(
        0.0, "Probability of training a sample with an empty caption.", ge=0.0, le=1.0
    )
    cache_latents: bool = option(True, "Encode images with the VAE once and cache the latents on disk.")
    cache_text_embeddings: bool = option(
        True, "Cache text encoder outputs on disk (ignored while the text encoder trains)."
    )
    workers: int = option(
        2, "Threads that prepare the next batches (image loading, VAE encoding of uncached latents) while a step "
        "trains; 0: in the step.", ge=0, le=64)
    mask_suffix: str = option(
        "-masklabel.png",
        "Mask files are named <image stem> + this suffix (OneTrainer's convention), beside their image and of its "
        "aspect ratio: white = the part to learn (masked_loss) or to repaint (inpainting models), black = the rest.",
    )
    validation_split: float = option(
        0.0,
        "Hold out this fraction of the training images (chosen by a seeded rule, the same every run; the pre-flight "
        "lists them) as a validation set scored at each save, in addition to any role = 'validation' concept. "
        "0: none.",
        ge=0.0,
        le=0.5,
    )
    random_mask_probability: float = option(
        0.75,
        "Inpainting models: the chance that an image without a mask file gets a random mask (boxes, blobs, "
        "strokes); else the whole image is masked, which keeps plain text-to-image working (the public "
        "inpainting models were trained so a quarter of the time).",
        ge=0.0,
        le=1.0,
    )

    @field_validator("mask_suffix")
    @classmethod
    def _mask_suffix_names_a_sibling_image(cls, value: str) -> str:
        extension = next((e for e in (".png", ".jpg", ".jpeg", ".webp") if value.lower().endswith(e)), "")
        if not extension or len(value) == len(extension) or "/" in value or "\\" in value:
            raise ValueError(
                "must be what follows an image's stem in its mask's file name, ending with an image extension "
                f"(e.g. '-masklabel.png' for img01-masklabel.png), got {quote(value)}"
            )
        return value

    @field_validator("resolution")
    @classmethod
    def _resolution_multiple_of_8(cls, value: int) -> int:
        # Checked on its own too, so the mistake shows even when the table has other errors.
        if value % 8:
            raise ValueError(f"must be a multiple of 8 (e.g. {round(value / 64) * 64}), got {value}")
        return value

    @model_validator(mode="after")
    def _resolution_fits_steps(self) -> DataSection:
        if self.resolution % self.bucket_step:
            raise ValueError(
                f"resolution: must be a multiple of data.bucket_step ({self.bucket_step}), got {self.resolution}"
            )
        for i, concept in enumerate(self.concepts):
            if concept.resolution is not None and concept.resolution % self.bucket_step:
                raise ValueError(
                    f"concepts[{i}].resolution: must be a multiple of data.bucket_step ({self.bucket_step}), "
                    f"got {concept.resolution}"
                )
        return self
