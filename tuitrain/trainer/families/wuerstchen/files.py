"""Würstchen v2 prior files: diffusers classes, the shipped config, the prior file, export names (torch-free)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuitrain.trainer.families.files import FamilyFiles

CONFIGS = Path(__file__).resolve().parent / "configs"

# Only the Würstchen prior has a text mapper named cond_mapper beside a 1x1 input projection (Stable Cascade's
# stage C has clip_txt_mapper, the Würstchen decoder clip_mapper): these tell its weights apart.
MARKERS = ("cond_mapper.0.weight", "projection.weight")


@dataclass(frozen=True)
class WuerstchenFiles(FamilyFiles):
    def claims_denoiser_file(self, shapes: Mapping[str, tuple[int, ...]]) -> bool:
        return all(m in shapes for m in MARKERS)

    def readiness(self, config: Any, config_dir: Path) -> list[str]:
        """The EfficientNet encoder and decoder that the config names or the model folders hold
        (cascade/companions.py, which the adapter's configure refuses by too)."""
        from tuitrain.trainer.families.cascade import companions

        return companions.companion_problems(config, companions.WUERSTCHEN, config_dir)


WUERSTCHEN = WuerstchenFiles(
    family="wuerstchen",
    pipeline_class="WuerstchenPriorPipeline",
    components=("prior", "text_encoder", "tokenizer", "scheduler"),
    configs=CONFIGS / "wuerstchen2",
    public_model="warp-ai/wuerstchen-prior",
    denoiser_component="prior",
    in_channels=16,
    # The published prior is a diffusers folder; its prior/diffusion_pytorch_model.safetensors (diffusers' names)
    # is the single file there is, and what a fine-tune saves. CLIP-bigG, its tokenizer and the scheduler come
    # from model.config's diffusers folder.
    single_file=False,
    denoiser_file=True,
    original_implementation="https://github.com/dome272/Wuerstchen",
    # diffusers/peft names with the scale folded in: `prior.<module path>.lora_A/B.weight` (and `text_encoder.`),
    # what WuerstchenPriorPipeline.load_lora_weights reads. ComfyUI has no Würstchen v2 model, so no
    # `lora_prior_unet_` names (those are Stable Cascade's).
    lora_format="peft",
    # LoKr / LoHa: `prior.<diffusers path>.lokr_w1` ..., the LoRA's names; no tool is known to load them.
    lycoris_prefix="prior.",
)

FILES: dict[str, Any] = {"wuerstchen": WUERSTCHEN}
