"""Stable Cascade stage C files: diffusers classes, shipped configs, the original prior file, export names
(torch-free)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuitrain.trainer.families.files import FamilyFiles

CONFIGS = Path(__file__).resolve().parent / "configs"

# Only stage C has the text mapper (stage B maps an effnet input instead): diffusers' single-file loader tells
# stage C by this key too (its width, 2048 or 1536, tells the full prior from the lite one).
ORIGINAL_MARKER = "clip_txt_mapper.weight"


@dataclass(frozen=True)
class CascadeFiles(FamilyFiles):
    def claims_denoiser_file(self, shapes: Mapping[str, tuple[int, ...]]) -> bool:
        return ORIGINAL_MARKER in shapes or f"model.diffusion_model.{ORIGINAL_MARKER}" in shapes

    def readiness(self, config: Any, config_dir: Path) -> list[str]:
        """The EfficientNet encoder, decoder and previewer that the config names or the model folders hold
        (cascade/companions.py, which the adapter's configure refuses by too)."""
        from tuitrain.trainer.families.cascade import companions

        return companions.companion_problems(config, companions.CASCADE, config_dir)


CASCADE = CascadeFiles(
    family="cascade",
    pipeline_class="StableCascadePriorPipeline",
    components=("prior", "text_encoder", "tokenizer", "scheduler"),
    configs=CONFIGS / "cascade",
    public_model="stabilityai/stable-cascade-prior",
    denoiser_component="prior",
    in_channels=16,
    # The released stage_c.safetensors / stage_c_lite.safetensors are the prior alone in the original layout;
    # CLIP-G, its tokenizer and the scheduler come from model.config's diffusers folder.
    single_file=False,
    denoiser_file=True,
    original_implementation="https://github.com/Stability-AI/StableCascade",
    # Plain LoRA: the adapter's lora_file_tensors writes kohya's tensors under ComfyUI's `lora_prior_unet_` names
    # (lora.py); "peft" is only the route to that hook (export/peft_lora.py).
    lora_format="peft",
    # LoKr / LoHa: `lora_prior_unet_<diffusers path>` (the generic writer; see lora.py for which modules
    # ComfyUI finds under these names).
    lycoris_prefix="lora_prior_unet",
)

FILES: dict[str, Any] = {"cascade": CASCADE}
