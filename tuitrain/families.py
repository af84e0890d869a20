"""The registry of model families: the facts the TUI side needs, without torch.

The trainer side keeps one adapter module per family (load, encode, noise, export)
and looks it up by the names registered here, so adding a family is one entry here
plus one adapter module there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Prediction = Literal["epsilon", "v_prediction", "flow"]


@dataclass(frozen=True)
class FamilyInfo:
    name: str
    title: str
    default_resolution: int
    prediction: Prediction
    # Values written into LoRA metadata, read by A1111 / ComfyUI / Civitai.
    ss_base_model_version: str
    modelspec_architecture: str
    text_encoders: int = 1


FAMILIES: dict[str, FamilyInfo] = {
    info.name: info
    for info in (
        FamilyInfo("sd15", "Stable Diffusion 1.x", 512, "epsilon", "sd_v1", "stable-diffusion-v1"),
        # SD 2.x: the 768 model predicts v, the 512 "base" predicts epsilon;
        # model.prediction = "auto" reads it from the scheduler config.
        FamilyInfo("sd2", "Stable Diffusion 2.x", 768, "v_prediction", "sd_v2", "stable-diffusion-v2-768-v"),
        FamilyInfo(
            "sdxl", "Stable Diffusion XL", 1024, "epsilon", "sdxl_base_v1-0", "stable-diffusion-xl-v1-base",
            text_encoders=2,
        ),
    )
}

FAMILY_NAMES: tuple[str, ...] = tuple(FAMILIES)
