"""SDXL files: diffusers classes, shipped configs, single-file layout (torch-free)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuitrain.trainer.families.files import INPAINT_CHANNELS, Claim, FamilyFiles, Variant

CONFIGS = Path(__file__).resolve().parent / "configs"
UNET_PREFIX = "model.diffusion_model."


@dataclass(frozen=True)
class SdxlFiles(FamilyFiles):
    def claims(self, has_prefix: Any, shapes: Mapping[str, tuple[int, ...]]) -> Claim | None:
        """SGM checkpoints keep their encoders under conditioner.embedders; the UNet has label_emb (size
        conditioning). The refiner has only the OpenCLIP-G encoder, as embedder 0."""
        if not (has_prefix("conditioner.embedders.") or f"{UNET_PREFIX}label_emb.0.0.weight" in shapes):
            return None
        if has_prefix("conditioner.embedders.0.model.") and not has_prefix("conditioner.embedders.1."):
            return Claim("an SDXL refiner (tuitrain trains the SDXL base model)")
        return Claim()


SDXL = SdxlFiles(
    family="sdxl",
    pipeline_class="StableDiffusionXLPipeline",
    components=("unet", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "scheduler"),
    configs=CONFIGS / "sdxl",
    public_model="stabilityai/stable-diffusion-xl-base-1.0",
    variants=(
        Variant(
            "inpainting", INPAINT_CHANNELS, "StableDiffusionXLInpaintPipeline",
            "diffusers/stable-diffusion-xl-1.0-inpainting-0.1", {
                "model_index.json": {"_class_name": "StableDiffusionXLInpaintPipeline"},
                "unet/config.json": {"in_channels": INPAINT_CHANNELS},
            },
        ),
    ),
    text_encoder_prefixes=("conditioner.embedders.0.transformer.", "conditioner.embedders.1.model."),
    context_dim=2048,
    original_implementation="https://github.com/Stability-AI/generative-models",
    lora_ldm_names=True,
    embedding_keys=("clip_l", "clip_g"),
)

FILES = {"sdxl": SDXL}
