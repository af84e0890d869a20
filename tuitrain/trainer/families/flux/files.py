"""FLUX.1 files: diffusers classes, shipped configs, export names (torch-free)."""

from __future__ import annotations

from pathlib import Path

from tuitrain.trainer.families.files import FamilyFiles

CONFIGS = Path(__file__).resolve().parent / "configs"

FLUX = FamilyFiles(
    family="flux",
    pipeline_class="FluxPipeline",
    components=("transformer", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "scheduler"),
    configs=CONFIGS / "flux",
    public_model="black-forest-labs/FLUX.1-dev",
    denoiser_component="transformer",
    in_channels=64,  # 16 latent channels packed 2x2
    single_file=False,  # BFL-layout files (flux1-dev.safetensors + separate CLIP/T5/VAE) are not read yet
    original_implementation="https://github.com/black-forest-labs/flux",
    # diffusers/peft keys (transformer.<module path>.lora_A/B.weight), the names ComfyUI and Forge map too;
    # the alpha/rank scale folded into lora_B so every loader applies scale 1 (export/peft_lora.py).
    lora_format="peft",
)

FILES = {"flux": FLUX}
