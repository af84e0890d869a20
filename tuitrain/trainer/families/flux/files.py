"""FLUX.1 files: diffusers classes, shipped configs, export names (torch-free)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuitrain.trainer.families.files import FamilyFiles
from tuitrain.trainer.families.sd.files import CONFIGS as SD_CONFIGS

CONFIGS = Path(__file__).resolve().parent / "configs"

# FLUX.1-schnell's scheduler config where it differs from dev's (the shipped configs/flux/scheduler): a static shift
# of 1 and no resolution-dependent shifting (black-forest-labs/FLUX.1-schnell's scheduler_config.json).
SCHNELL_SCHEDULER = {"shift": 1.0, "use_dynamic_shifting": False}

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

    def part_files(self, given: Mapping[str, Path]) -> str:
        from tuitrain.trainer.families.flux.parts import PARTS, describe, part_file

        sources = {part.component: part_file(part, given[part.component]) for part in PARTS if part.component in given}
        return describe(sources, has_vae=False, rest=False)

    def dora_problem(self, config: Any) -> str | None:
        """Besides the default: DoRA on FLUX.1 saves what diffusers applies exactly, the transformer's layers in
        diffusers' names."""
        problem = super().dora_problem(config)
        if problem or config.training.method != "lora" or not config.lora.use_dora:
            return problem
        if config.flux.lora_layout == "kohya":
            return ("lora.use_dora: kohya's FLUX.1 layout (flux.lora_layout = 'kohya') is written without DoRA here; "
                    "set flux.lora_layout = 'diffusers' or use_dora = false")
        if config.lora.train_text_encoder:
            # Measured (diffusers 0.42, transformers 5): load_lora_weights leaves CLIP-L's DoRA magnitudes
            # unloaded (newly initialised), so the file would not reproduce the trainer's text encoder.
            return ("lora.use_dora: diffusers does not load DoRA magnitudes into CLIP-L, so the file would not apply "
                    "as trained; set lora.train_text_encoder = false or use_dora = false")
        return None


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
    writes_dora=True,  # the transformer's DoRA magnitudes as lora_magnitude_vector (adapter.dora_state_dict)
    # LoKr / LoHa: `lycoris_<diffusers module path>` (SimpleTuner's layout), which ComfyUI's and Forge's Flux
    # key maps read (comfy/lora.py: "lycoris_{}" next to "transformer.{}").
    lycoris_prefix="lycoris",
)

FILES = {"flux": FLUX}
