"""SD3 / SD3.5 files: diffusers classes, shipped configs, export names (torch-free)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tuitrain.trainer.families.files import FamilyFiles

CONFIGS = Path(__file__).resolve().parent / "configs"

# The first joint block's fused image-stream q/k/v in Stability AI's layout: every SD3 / SD3.5 single file has it,
# the transformer-only ones and the all-in-one ones (with text_encoders.* and first_stage_model.) alike.
_SAI_MARKER = "joint_blocks.0.x_block.attn.qkv.weight"


@dataclass(frozen=True)
class SD3Files(FamilyFiles):
    def claims_denoiser_file(self, shapes: Mapping[str, tuple[int, ...]]) -> bool:
        return _SAI_MARKER in shapes or f"model.diffusion_model.{_SAI_MARKER}" in shapes


SD3 = SD3Files(
    family="sd3",
    pipeline_class="StableDiffusion3Pipeline",
    components=("transformer", "vae", "text_encoder", "text_encoder_2", "text_encoder_3", "tokenizer", "tokenizer_2",
                "tokenizer_3", "scheduler"),
    configs=CONFIGS / "sd3",
    public_model="stabilityai/stable-diffusion-3.5-large",
    denoiser_component="transformer",
    in_channels=16,
    # SAI's single files (transformer alone, or all-in-one) load with model.config's folder for what they lack
    # (loading.py); a fine-tune saves the transformer in SAI's layout (layout.py).
    single_file=False,
    denoiser_file=True,
    original_implementation="https://github.com/Stability-AI/sd3.5",
    # diffusers' SD3 loader refuses files with `.alpha` keys: the scale is folded into lora_B (export/peft_lora.py),
    # and `transformer.` keys are what ComfyUI maps; LoKr/LoHa as `lycoris_<path>`, which ComfyUI's SD3 key map reads.
    lora_format="peft",
    lycoris_prefix="lycoris",
)

FILES = {"sd3": SD3}
