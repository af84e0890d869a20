"""What loading, `tuitrain check` and export need to know about a family's files, without torch.

Each family home (families/<home>/files.py) declares one FamilyFiles per family it
hosts. The generic code in loading/ and export/ reads these facts instead of keeping
tables keyed by family name, so a new family brings its own and touches neither.
Torch-free on purpose: `tuitrain check` (a light command) reads headers and JSON with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# An image-to-image UNet input: noisy latents (4) + mask (1) + masked-image latents (4), in that order,
# as diffusers' inpainting pipelines concatenate them.
INPAINT_CHANNELS = 9


@dataclass(frozen=True)
class Claim:
    """A family's answer to "is this checkpoint header one of mine?"."""

    note: str = ""  # non-empty: it is this family's file, but not one tuitrain trains (e.g. the SDXL refiner)


@dataclass(frozen=True)
class FamilyFiles:
    family: str
    # diffusers pipeline class names (text-to-image; and inpainting, for families that have one).
    pipeline_class: str
    inpaint_pipeline_class: str | None
    # Components a diffusers-format config folder of the family must describe (tokenizers: their files).
    components: tuple[str, ...]
    # Shipped architecture configs: the public model's diffusers folder without weights.
    configs: Path
    public_model: str
    public_inpainting_model: str | None = None
    # Changes that turn the shipped configs into the family's public inpainting model.
    inpainting_changes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # Pipeline components diffusers would load that training never needs (safety checker).
    pipeline_extras: Mapping[str, Any] = field(default_factory=dict)
    # Single-file (LDM / SGM) layout: where the text encoders live, OpenCLIP or transformers naming.
    text_encoder_prefixes: tuple[str, ...] = ()
    # Cross-attention width of the public architecture: tells families apart without text encoders.
    context_dim: int | None = None
    # modelspec.implementation of whole checkpoints and embeddings (the original code's repository).
    original_implementation: str = ""
    # kohya LoRA files name this family's UNet by LDM paths instead of diffusers' (export/naming.py).
    lora_ldm_names: bool = False
    # Textual-inversion file tensor names, one per text encoder (A1111 / ComfyUI / kohya layout).
    embedding_keys: tuple[str, ...] = ()

    @property
    def text_encoder_components(self) -> tuple[str, ...]:
        """The pipeline attributes holding the text encoders, in the family's order."""
        return tuple(c for c in self.components if c.startswith("text_encoder"))

    @property
    def pipeline_classes(self) -> tuple[str, ...]:
        return tuple(c for c in (self.pipeline_class, self.inpaint_pipeline_class) if c)

    def pipeline_class_for(self, denoiser_config: Mapping[str, Any] | None) -> str:
        """The pipeline for a model whose denoiser has this config: the denoiser decides, not the class name."""
        inpainting = (denoiser_config or {}).get("in_channels") == INPAINT_CHANNELS
        return self.inpaint_pipeline_class if inpainting and self.inpaint_pipeline_class else self.pipeline_class

    def claims(self, has_prefix: Any, shapes: Mapping[str, tuple[int, ...]]) -> Claim | None:
        """Whether a single-file checkpoint (given its header's key test and shapes) is this family's.

        The default: the file holds the family's first text encoder at its single-file place.
        """
        if self.text_encoder_prefixes and has_prefix(self.text_encoder_prefixes[0]):
            return Claim()
        return None
