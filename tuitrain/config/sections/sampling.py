"""[sampling] and [[sampling.prompts]]: the images drawn during training."""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator, model_validator

from tuitrain.config.fields import Section, option
from tuitrain.config.sections.common import MAX_EPOCHS, MAX_SEED, MAX_STEPS, a_possible_path


class SamplePrompt(Section):
    """One sample image drawn during training; unset values come from [sampling]."""

    group = "sampling"

    prompt: str = option(..., "What to draw.", level="essential")
    negative_prompt: str | None = option(None, "Negative prompt. Unset: sampling.negative_prompt.")
    seed: int | None = option(None, "Seed. Unset: sampling.seed.", ge=0, le=MAX_SEED)
    steps: int | None = option(None, "Denoising steps. Unset: sampling.steps.", ge=1, le=1000)
    cfg: float | None = option(None, "Classifier-free guidance scale. Unset: sampling.cfg.", ge=0.0, le=100.0)
    width: int | None = option(None, "Width in pixels. Unset: data.resolution.", ge=64, le=8192)
    height: int | None = option(None, "Height in pixels. Unset: data.resolution.", ge=64, le=8192)
    reference: str = option(
        "",
        "Editing models (model.flavour = 'kontext'): the image to edit for this sample (relative paths: to the "
        "config file). Empty: text-to-image.",
    )

    _paths_are_possible = field_validator("reference")(a_possible_path)

    @model_validator(mode="after")
    def _size_multiple_of_8(self) -> SamplePrompt:
        for key in ("width", "height"):
            value = getattr(self, key)
            if value is not None and value % 8:
                raise ValueError(f"{key}: must be a multiple of 8, got {value}")
        return self


class SamplingSection(Section):
    group = "sampling"

    every_epochs: int = option(1, "Draw samples every N epochs (0: never by epoch).", ge=0, le=MAX_EPOCHS)
    every_steps: int = option(0, "Draw samples every N steps (0: never by step).", ge=0, le=MAX_STEPS)
    before_training: bool = option(False, "Draw one round of samples before the first step, as a baseline.")
    prompts: list[SamplePrompt] = option(
        default_factory=list, help="Sample prompts ([[sampling.prompts]] tables).", level="essential"
    )
    negative_prompt: str = option("", "Default negative prompt.")
    seed: int = option(42, "Default seed: the same seed every time makes epochs comparable.", ge=0, le=MAX_SEED)
    steps: int = option(25, "Default denoising steps.", ge=1, le=1000)
    cfg: float = option(7.0, "Default classifier-free guidance scale.", ge=0.0, le=100.0)
    sampler: Literal["default", "ddim", "euler", "euler_a", "dpmpp_2m", "unipc"] = option(
        "default", "Sampler (diffusers scheduler). default: the base model's own."
    )
