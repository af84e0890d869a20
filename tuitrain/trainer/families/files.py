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
class Variant:
    """A published variant whose denoiser takes a different input, with its own pipeline (inpainting:
    9 channels). The denoiser's input channels decide, never the class name in model_index.json."""

    name: str  # shown in messages and in the shipped config folder's name ("inpainting")
    in_channels: int
    pipeline_class: str
    public_model: str
    # Changes that turn the family's shipped configs into the variant's public model.
    config_changes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class FamilyFiles:
    family: str
    # The diffusers pipeline class of the text-to-image model.
    pipeline_class: str
    # Components a diffusers-format config folder of the family must describe (tokenizers: their files).
    components: tuple[str, ...]
    # Shipped architecture configs: the public model's diffusers folder without weights.
    configs: Path
    public_model: str
    # Component folders of the public model that another family's shipped configs already hold (FLUX.1's CLIP-L
    # text encoder and tokenizer are SD 1.5's): folder name -> that folder, copied in when the config folder is built.
    shared_configs: Mapping[str, Path] = field(default_factory=dict)
    # The pipeline attribute holding the denoiser ("unet", "transformer"): also the prefix of its weights
    # in a fine-tune's state dict and the config folder it is described in.
    denoiser_component: str = "unet"
    # Input channels of the text-to-image denoiser (its latent channels), and the variants it has.
    in_channels: int = 4
    variants: tuple[Variant, ...] = ()
    # Other text-to-image pipelines of the family's flavours (PixArt-α's beside Σ's): a folder declaring one
    # loads with it, since the flavours' pipelines condition the denoiser differently.
    sibling_pipelines: tuple[str, ...] = ()
    # Pipeline components diffusers would load that training never needs (safety checker).
    pipeline_extras: Mapping[str, Any] = field(default_factory=dict)
    # Whether tuitrain loads (and writes) the family as one original-layout .safetensors file.
    single_file: bool = True
    # Whether the denoiser alone loads from (and a fine-tune saves to) one file in the original layout,
    # the other components coming from model.config (FLUX.1: BFL's flux1-dev.safetensors layout).
    denoiser_file: bool = False
    # Single-file (LDM / SGM) layout: where the text encoders live, OpenCLIP or transformers naming.
    text_encoder_prefixes: tuple[str, ...] = ()
    # Cross-attention width of the public architecture: tells families apart without text encoders.
    context_dim: int | None = None
    # modelspec.implementation of whole checkpoints and embeddings (the original code's repository).
    original_implementation: str = ""
    # The LoRA file layout: "kohya" (lora_unet_* / lora_te*_ names with .alpha, export/kohya_lora.py) or
    # "peft" (diffusers' <component>.<module path>.lora_A/B.weight, scale folded in, export/peft_lora.py).
    lora_format: str = "kohya"
    # LoKr / LoHa files of a "peft"-format family: their denoiser modules as `<prefix>_<diffusers path>`
    # (FLUX.1: "lycoris", SimpleTuner's names, which ComfyUI and Forge map), or, for a prefix ending in ".",
    # `<prefix><diffusers path>` with the dots kept (PixArt: "transformer.", the only names ComfyUI maps for it);
    # "" for none.
    lycoris_prefix: str = ""
    # A "peft"-format family whose LoRA files hold DoRA's magnitudes in a form diffusers applies as trained
    # (FLUX.1: lora_magnitude_vector); the other "peft" families refuse lora.use_dora (dora_problem).
    writes_dora: bool = False
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
        return (self.pipeline_class, *self.sibling_pipelines, *(v.pipeline_class for v in self.variants))

    def variant(self, in_channels: int | None) -> Variant | None:
        """The variant whose denoiser takes `in_channels` (None: the text-to-image model, or unknown)."""
        return next((v for v in self.variants if v.in_channels == in_channels), None)

    def variant_named(self, name: str) -> Variant:
        found = next((v for v in self.variants if v.name == name), None)
        if found is None:
            raise ValueError(f"family {self.family!r} has no {name!r} variant")
        return found

    def readiness(self, config: Any, config_dir: Path) -> list[str]:
        """Why a valid config cannot train this family for want of files besides the base model (Stable Cascade's
        EfficientNet encoder), one line naming the key each: what `tuitrain check` blocks and the adapter's
        configure refuses, in the same words (relative paths from `config_dir`). By default nothing."""
        return []

    @property
    def trainable_channels(self) -> tuple[int, ...]:
        """Denoiser input channels tuitrain trains: the text-to-image model's and each variant's."""
        return (self.in_channels, *(v.in_channels for v in self.variants))

    def describe_channels(self) -> str:
        """e.g. "text-to-image (4 input channels) and inpainting models (9)", for messages."""
        kinds = [f"text-to-image ({self.in_channels} input channels)", *(f"{v.name} models ({v.in_channels})" for v in self.variants)]
        return " and ".join([", ".join(kinds[:-1]), kinds[-1]]) if len(kinds) > 1 else kinds[0] + " models"

    def pipeline_class_for(self, denoiser_config: Mapping[str, Any] | None, declared: str | None = None) -> str:
        """The pipeline for a model whose denoiser has this config: the denoiser decides, not the class name,
        except between sibling pipelines (`declared`: model_index.json's class), which take the same denoiser."""
        found = self.variant((denoiser_config or {}).get("in_channels"))
        if found:
            return found.pipeline_class
        return declared if declared in self.sibling_pipelines else self.pipeline_class

    def claims_denoiser_file(self, shapes: Mapping[str, tuple[int, ...]]) -> bool:
        """Whether a file's keys are this family's denoiser alone (families with denoiser_file)."""
        return False

    def denoiser_file_parts(self, base: Path, given: Mapping[str, Path], *, has_vae: bool,
                            folder_has_weights: bool) -> str:
        """Where a denoiser file's other components come from, in words for `tuitrain check` (FLUX.1: their own
        files `given` by component, an all-in-one checkpoint, or model.config's folder); ModelLoadError naming
        the key of one found nowhere. By default all of them come from model.config's folder."""
        return "the rest from model.config"

    def part_files(self, given: Mapping[str, Path]) -> str:
        """Checks that the files `given` for text encoders (model.text_encoder / text_encoder_2, by component) hold
        them, whatever model.base is; where those parts come from, in words ("" for none). ModelLoadError naming
        the key of a file that is not its part. By default there are none (the model section refuses them)."""
        return ""

    def dora_problem(self, config: Any) -> str | None:
        """Why a LoRA run with lora.use_dora cannot train for this family (one line naming the key), None when it
        can: what `tuitrain check` blocks and the trainer refuses at start, in the same words."""
        if config.training.method != "lora" or not config.lora.use_dora:
            return None
        if self.lora_format == "peft" and not self.writes_dora:
            return (f"lora.use_dora: {self.family} LoRA files are written in diffusers' naming with the scale "
                    "folded in, which has no DoRA form in tuitrain yet; turn use_dora off")
        return None

    def claims(self, has_prefix: Any, shapes: Mapping[str, tuple[int, ...]]) -> Claim | None:
        """Whether a single-file checkpoint (given its header's key test and shapes) is this family's.

        The default: the file holds the family's first text encoder at its single-file place.
        """
        if self.text_encoder_prefixes and has_prefix(self.text_encoder_prefixes[0]):
            return Claim()
        return None
