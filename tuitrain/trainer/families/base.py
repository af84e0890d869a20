"""The interface every model family implements (objectives are their own package: trainer/objectives).

The training loop calls only these methods, so it knows no family: a new family
(Flux, SD3, PixArt) is a new home under families/ plus a registry entry in
tuitrain/families.py (docs/adding-a-family.md).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import torch

from tuitrain.dataset.buckets import BucketAssignment
from tuitrain.families import FamilyInfo

# Text conditioning of one batch, by name (e.g. "hidden", "pooled"); tensors have a batch dim.
Conditioning = dict[str, torch.Tensor]
@dataclass
class ModelParts:
    """The pieces of a loaded base model the trainer touches."""

    pipeline: Any  # the diffusers pipeline (used for sampling and LoRA export)
    denoiser: torch.nn.Module  # UNet (or transformer, for later families)
    vae: torch.nn.Module
    text_encoders: list[torch.nn.Module]
    tokenizers: list[Any]
    noise_scheduler: Any  # a diffusers training scheduler (DDPMScheduler for SD)
    prediction_type: str  # "epsilon" | "v_prediction" | "flow"
    flavour: str = ""  # the FamilyInfo flavour this model is (detected or model.flavour)
    extra: dict[str, Any] = field(default_factory=dict)
    inpainting: bool = False  # a 9-channel UNet: each batch brings a mask and masked-image latents


@dataclass
class LatentBatch:
    """A batch as the denoiser's objective sees it."""

    latents: torch.Tensor  # scaled VAE latents [B, C, h, w]
    conditioning: Conditioning
    # per-sample (original_h, original_w, crop_top, crop_left, target_h, target_w), for SDXL
    size_info: torch.Tensor | None = None
    # inpainting models: mask (1 channel, 1 = repaint) + masked-image latents (4) [B, 5, h, w]
    inpaint: torch.Tensor | None = None
    # editing models (FLUX.1 Kontext): the reference images' latents [B, C, h, w], the same size as `latents`
    reference: torch.Tensor | None = None


class FamilyAdapter(ABC):
    info: FamilyInfo

    # Module names (suffixes) LoRA targets inside the denoiser and text encoders.
    attention_modules: tuple[str, ...] = ()
    feed_forward_modules: tuple[str, ...] = ()
    conv_modules: tuple[str, ...] = ()
    text_encoder_modules: tuple[str, ...] = ()
    # How many of the text encoders (in order) lora.train_text_encoder / finetune.train_text_encoder train
    # (None: all; Flux: 1 and SD3: 2, the CLIPs, not T5).
    trainable_text_encoders: int | None = None

    quantize: str = "none"  # model.quantize: how place() stores the frozen denoiser
    quantize_text_encoders: str = "none"  # model.quantize_text_encoders: and the frozen text encoders
    vae_tiling: bool = False  # model.vae_tiling: place() turns on the VAE's tiling and slicing

    def configure(self, config: Any) -> None:
        """Take the run's options a family acts on (model.quantize, model.flavour, its own config section)
        before parts(); a family overriding this calls it first."""
        self.quantize = config.model.quantize
        self.quantize_text_encoders = config.model.quantize_text_encoders
        self.vae_tiling = config.model.vae_tiling

    def denoiser_file_state(self, denoiser: torch.nn.Module) -> dict[str, torch.Tensor]:
        """The denoiser's weights in the family's original single-file names (FamilyFiles.denoiser_file)."""
        raise NotImplementedError(f"{type(self).__name__} has no denoiser file layout")

    def text_settings(self, parts: ModelParts) -> str:
        """What else encode_text's output depends on besides the model and caption (part of the text cache's
        key); "" when nothing."""
        return ""

    def metadata(self, config: Any) -> dict[str, str]:
        """Family training settings for a saved file's header, kohya's `ss_*` names where kohya has them."""
        return {}

    def lora_file_tensors(self, models: dict[str, torch.nn.Module], denoiser_name: str,
                          dtype: torch.dtype) -> dict[str, torch.Tensor] | None:
        """A plain LoRA's tensors in a layout of the family's own choosing (FLUX.1's kohya names); None: the
        writer of FamilyFiles.lora_format."""
        return None

    def cache_identity(self) -> str:
        """What else the cached latents and text depend on besides the base model's files (a family that loads
        an image encoder from elsewhere: Cascade's EfficientNet): part of the cache keys; "" when nothing."""
        return ""

    def lycoris_module_path(self, path: str) -> str:
        """The module path a LoKr / LoHa file names for the denoiser module at diffusers path `path`
        (FamilyFiles.lycoris_prefix families): what the family's loaders map; the diffusers path by default."""
        return path

    def sample_pipeline(self, parts: ModelParts) -> Any:
        """The pipeline samples are drawn with (an editing flavour may need another on the same components)."""
        return parts.pipeline

    def sample_inputs(self, parts: ModelParts, prompt: dict[str, Any]) -> dict[str, Any]:
        """The family pipeline's arguments for one sample prompt (sampling.py's dict: prompt, negative_prompt,
        steps, cfg, width, height)."""
        extra: dict[str, Any] = {}
        if parts.inpainting:  # draw from the prompt alone: everything masked, nothing kept
            from tuitrain.trainer.sampling import text_to_image_inputs

            extra = text_to_image_inputs(prompt["width"], prompt["height"])
        return {"prompt": prompt["prompt"], "negative_prompt": prompt["negative_prompt"] or None,
                "num_inference_steps": prompt["steps"], "guidance_scale": prompt["cfg"], "width": prompt["width"],
                "height": prompt["height"], **extra}

    @abstractmethod
    def parts(self, pipeline: Any, prediction: str) -> ModelParts:
        """Pick the components out of a loaded pipeline; `prediction` is model.prediction."""

    @abstractmethod
    def encode_text(self, parts: ModelParts, captions: list[str], clip_skip: int = 0) -> Conditioning:
        """Text encoder outputs for a list of captions."""

    @abstractmethod
    def predict(self, parts: ModelParts, noisy: torch.Tensor, timesteps: torch.Tensor, batch: LatentBatch) -> torch.Tensor:
        """The denoiser's output for noisy latents."""

    def place(self, parts: ModelParts, device: torch.device, compute_dtype: torch.dtype,
              full_precision: frozenset[str] = frozenset()) -> None:
        """Put the frozen model where and how it trains: the one placement step (the loop casts nothing).

        The denoiser and text encoders go to `compute_dtype` except the components the method
        keeps in their loaded precision (`full_precision`: "denoiser", "text_encoders"; a
        fine-tune trains those). A family or mode that holds its weights otherwise (a quantized
        or offloaded denoiser) overrides this instead of fighting a cast. The VAE only encodes
        (once, when latents are cached) and decodes samples: fp32 avoids the SDXL VAE's fp16
        overflow for little cost.
        """
        components = (("denoiser", parts.denoiser), *(("text_encoders", m) for m in parts.text_encoders))
        for name, module in components:
            module.requires_grad_(False)
            mode = self.quantize if name == "denoiser" else self.quantize_text_encoders
            if mode != "none" and name not in full_precision:
                # model.quantize(_text_encoders): the large linear layers go to the device one by one, already
                # quantized, so the unquantized model never has to fit there (a 24 GB card could not hold Flux's).
                from tuitrain.trainer.quantize import quantize_linear_layers

                quantize_linear_layers(module, mode, compute_dtype, device)
            module.to(device, dtype=None if name in full_precision else compute_dtype)
        parts.vae.requires_grad_(False)
        parts.vae.to(device, dtype=torch.float32)
        if self.vae_tiling and hasattr(parts.vae, "enable_tiling"):
            parts.vae.enable_tiling()
            parts.vae.enable_slicing()

    def size_info(self, assignments: list[BucketAssignment]) -> torch.Tensor | None:
        """Per-sample size conditioning from the bucketing (LatentBatch.size_info); None for families without it."""
        return None

    def encode_images(self, parts: ModelParts, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels in [-1, 1] -> scaled latents (mean of the posterior: deterministic, cacheable)."""
        vae = parts.vae
        latents = vae.encode(pixels.to(vae.dtype)).latent_dist.mean
        shift = getattr(vae.config, "shift_factor", None) or 0.0
        return (latents - shift) * vae.config.scaling_factor

    # -- the full-size architecture, for bench/ -------------------------------------------------
    def full_size_denoiser(self) -> torch.nn.Module:
        """The public model's denoiser with random weights, built from the shipped config on the current
        default device (`with torch.device("cuda"):` puts it straight on the GPU): speed and memory
        do not depend on the weights' values, and nothing downloads."""
        import json

        import diffusers

        from tuitrain.trainer.families import family_files

        files = family_files(self.info.name)
        config = json.loads((files.configs / files.denoiser_component / "config.json").read_text(encoding="utf-8"))
        cls = getattr(diffusers, config["_class_name"])
        return cls.from_config(cls.load_config(str(files.configs / files.denoiser_component)))

    def random_batch(self, denoiser: torch.nn.Module, batch: int, resolution: int, device: torch.device,
                     dtype: torch.dtype) -> LatentBatch:
        """Random latents and text conditioning of the shapes a training batch at `resolution` has
        (what the caches would hand the denoiser), for timing the denoiser alone."""
        raise NotImplementedError(f"{type(self).__name__} has no bench batch")
