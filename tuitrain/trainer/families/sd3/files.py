"""SD3 / SD3.5 files: diffusers classes, shipped configs, export names (torch-free)."""

from __future__ import annotations

from pathlib import Path

from tuitrain.trainer.families.files import FamilyFiles

CONFIGS = Path(__file__).resolve().parent / "configs"

SD3 = FamilyFiles(
    family="sd3",
    pipeline_class="StableDiffusion3Pipeline",
    components=("transformer", "vae", "text_encoder", "text_encoder_2", "text_encoder_3", "tokenizer", "tokenizer_2",
                "tokenizer_3", "scheduler"),
    configs=CONFIGS / "sd3",
    public_model="stabilityai/stable-diffusion-3.5-large",
    denoiser_component="transformer",
    in_channels=16,
    single_file=False,
    original_implementation="https://github.com/Stability-AI/sd3.5",
    # diffusers' SD3 loader refuses files with `.alpha` keys: the scale is folded into lora_B (export/peft_lora.py),
    # and `transformer.` keys are what ComfyUI maps; LoKr/LoHa as `lycoris_<path>`, which ComfyUI's SD3 key map reads.
    lora_format="peft",
    lycoris_prefix="lycoris",
)

FILES = {"sd3": SD3}
