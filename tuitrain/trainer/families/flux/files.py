"""FLUX.1 files: diffusers classes, shipped configs, export names (torch-free)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tuitrain.trainer.families.files import FamilyFiles

CONFIGS = Path(__file__).resolve().parent / "configs"

# BFL's name for the first double block's fused q/k/v (ComfyUI saves it under model.diffusion_model.).
_BFL_MARKER = "double_blocks.0.img_attn.qkv.weight"


@dataclass(frozen=True)
class FluxFiles(FamilyFiles):
    def claims_denoiser_file(self, shapes: Mapping[str, tuple[int, ...]]) -> bool:
        return _BFL_MARKER in shapes or f"model.diffusion_model.{_BFL_MARKER}" in shapes


FLUX = FluxFiles(
    family="flux",
    pipeline_class="FluxPipeline",
    components=("transformer", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "scheduler"),
    configs=CONFIGS / "flux",
    public_model="black-forest-labs/FLUX.1-dev",
    denoiser_component="transformer",
    in_channels=64,  # 16 latent channels packed 2x2
    # No all-in-one file; the transformer alone in BFL's layout (flux1-dev.safetensors, community
    # fine-tunes), with the text encoders, VAE and tokenizers from model.config's diffusers folder.
    single_file=False,
    denoiser_file=True,
    original_implementation="https://github.com/black-forest-labs/flux",
    # diffusers/peft keys (transformer.<module path>.lora_A/B.weight), the names ComfyUI and Forge map too;
    # the alpha/rank scale folded into lora_B so every loader applies scale 1 (export/peft_lora.py).
    lora_format="peft",
    # LoKr / LoHa: `lycoris_<diffusers module path>` (SimpleTuner's layout), which ComfyUI's and Forge's Flux
    # key maps read (comfy/lora.py: "lycoris_{}" next to "transformer.{}").
    lycoris_prefix="lycoris",
)

FILES = {"flux": FLUX}
