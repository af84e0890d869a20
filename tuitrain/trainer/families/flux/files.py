"""FLUX.1 files: diffusers classes, shipped configs, export names (torch-free)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tuitrain.trainer.families.files import FamilyFiles
from tuitrain.trainer.families.sd.files import CONFIGS as SD_CONFIGS

CONFIGS = Path(__file__).resolve().parent / "configs"

# BFL's name for the first double block's fused q/k/v (ComfyUI saves it under model.diffusion_model.).
_BFL_MARKER = "double_blocks.0.img_attn.qkv.weight"


@dataclass(frozen=True)
class FluxFiles(FamilyFiles):
    def claims_denoiser_file(self, shapes: Mapping[str, tuple[int, ...]]) -> bool:
        return _BFL_MARKER in shapes or f"model.diffusion_model.{_BFL_MARKER}" in shapes

    def denoiser_file_parts(self, base: Path, given: Mapping[str, Path], *, has_vae: bool,
                            folder_has_weights: bool) -> str:
        from tuitrain.trainer.families.flux.parts import describe, plan_parts

        sources = plan_parts(base, given, has_vae=has_vae, folder_has_weights=folder_has_weights)
        return describe(sources, has_vae=has_vae)


FLUX = FluxFiles(
    family="flux",
    pipeline_class="FluxPipeline",
    components=("transformer", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "scheduler"),
    configs=CONFIGS / "flux",
    public_model="black-forest-labs/FLUX.1-dev",
    # FLUX.1's CLIP-L is openai/clip-vit-large-patch14's text model, as SD 1.5's (the same config and tokenizer).
    shared_configs={name: SD_CONFIGS / "sd15" / name for name in ("text_encoder", "tokenizer")},
    denoiser_component="transformer",
    in_channels=64,  # 16 latent channels packed 2x2
    # Not the LDM / SGM single-file layout: the transformer in BFL's layout (flux1-dev.safetensors, community
    # fine-tunes; ComfyUI's all-in-one checkpoints add text_encoders.* and vae.* to it), with CLIP-L, T5 and the
    # VAE from model.text_encoder / text_encoder_2 / vae files, the checkpoint itself, or model.config's folder
    # (flux/loading.py).
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
