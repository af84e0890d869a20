"""PixArt-α / Σ files: diffusers classes, shipped configs, the original checkpoint's layout, export names
(torch-free)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuitrain.trainer.families.files import FamilyFiles

CONFIGS = Path(__file__).resolve().parent / "configs"

# The original repository's name for the first block's cross-attention key/value projection: what every
# PixArt-α / Σ checkpoint it released holds (bare, or under ComfyUI's model.diffusion_model. prefix).
_ORIGINAL_MARKER = "blocks.0.cross_attn.kv_linear.weight"


@dataclass(frozen=True)
class PixArtFiles(FamilyFiles):
    def claims_denoiser_file(self, shapes: Mapping[str, tuple[int, ...]]) -> bool:
        return _ORIGINAL_MARKER in shapes or f"model.diffusion_model.{_ORIGINAL_MARKER}" in shapes


PIXART = PixArtFiles(
    family="pixart",
    pipeline_class="PixArtSigmaPipeline",
    # PixArt-α folders declare their own pipeline (which passes α's resolution / aspect-ratio conditioning).
    sibling_pipelines=("PixArtAlphaPipeline",),
    components=("transformer", "vae", "text_encoder", "tokenizer", "scheduler"),
    configs=CONFIGS / "pixart",
    public_model="PixArt-alpha/PixArt-Sigma-XL-2-1024-MS",
    denoiser_component="transformer",
    in_channels=4,
    # The released checkpoints are the transformer alone in the original layout (PixArt-Sigma-XL-2-1024-MS.pth,
    # converted once to .safetensors as tuitrain asks of every pickle), with T5, the VAE and the tokenizer from
    # model.config's diffusers folder.
    single_file=False,
    denoiser_file=True,
    original_implementation="https://github.com/PixArt-alpha/PixArt-sigma",
    # diffusers/peft keys with the scale folded into lora_B: ComfyUI maps `transformer.<diffusers path>` for
    # PixArt (comfy/lora.py), and peft loads them into PixArtTransformer2DModel (diffusers has no PixArt loader).
    lora_format="peft",
    # LoKr / LoHa: `transformer.<diffusers path>.lokr_w1` ...: ComfyUI's PixArt key map has `transformer.<path>`
    # (and peft's forms) only, no `lycoris_` names as for Flux and SD3.
    lycoris_prefix="transformer.",
)

FILES: dict[str, Any] = {"pixart": PIXART}
