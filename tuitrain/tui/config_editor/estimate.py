"""A rough VRAM estimate for the form's side panel, from config values alone (no torch).

It is labelled an estimate everywhere it is shown. The formula, in GiB:

    weights     = model parameters x bytes per parameter of the precision (bf16/fp16: 2, fp32: 4)
    trained     = trainable parameters x (4 weight + 4 gradient + optimizer state bytes)
    activations = ACT[family] x batch_size x (resolution / native resolution)^2, / 3.5 with
                  gradient checkpointing
    total       = weights + trained + activations + 0.8 (CUDA context and allocator slack)

Parameter counts are the public model sizes; the activation constants were read
off typical training runs and are only good to about +-30%.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tuitrain.families import FAMILIES

GIB = 1024**3
# (denoiser, text encoders, VAE) parameters.
PARAMS: dict[str, tuple[float, float, float]] = {
    "sd15": (860e6, 123e6, 84e6),
    "sd2": (865e6, 340e6, 84e6),
    "sdxl": (2567e6, 817e6, 84e6),
}
# GiB of activations for one image at the family's native resolution, batch 1.
ACTIVATIONS: dict[str, float] = {"sd15": 2.6, "sd2": 4.0, "sdxl": 9.0}
# LoRA parameters per unit of rank, attention projections only (ff and conv add to it).
LORA_PER_RANK: dict[str, float] = {"sd15": 0.1e6, "sd2": 0.1e6, "sdxl": 0.73e6}
# Optimizer state bytes per trained parameter.
OPTIMIZER_BYTES: dict[str, float] = {"adamw": 8, "adamw8bit": 2, "prodigy": 16, "lion8bit": 1, "adafactor": 4}
OVERHEAD_GIB = 0.8


@dataclass(frozen=True)
class VramEstimate:
    total_gib: float
    weights_gib: float
    trained_gib: float
    activations_gib: float

    def describe(self) -> str:
        return (
            f"≈ {self.total_gib:.1f} GiB (estimate): weights {self.weights_gib:.1f}, "
            f"training state {self.trained_gib:.1f}, activations {self.activations_gib:.1f}"
        )


def _get(data: dict[str, Any], section: str, key: str, default: Any) -> Any:
    table = data.get(section)
    return table.get(key, default) if isinstance(table, dict) else default


def estimate_vram(data: dict[str, Any]) -> VramEstimate:
    """The estimate for config data (as the form holds it); unknown families count as sd15."""
    family = str(_get(data, "model", "family", "sd15"))
    family = family if family in PARAMS else "sd15"
    unet, text, vae = PARAMS[family]
    method = _get(data, "training", "method", "lora")
    precision = _get(data, "training", "mixed_precision", "auto")
    bytes_per = 4 if precision == "fp32" else 2
    weights = (unet + text + vae) * bytes_per

    if method == "finetune":
        trainable = unet
    elif method == "embedding":
        trainable = 8 * 2048
    else:
        rank = int(_get(data, "lora", "rank", 16))
        layers = 1.0 + (1.5 if _get(data, "lora", "train_ff", False) else 0.0)
        trainable = LORA_PER_RANK[family] * rank * layers
        if _get(data, "lora", "train_conv", False):
            trainable += LORA_PER_RANK[family] * 0.5 * int(_get(data, "lora", "conv_rank", 8))
        if _get(data, "lora", "train_text_encoder", False):
            trainable += LORA_PER_RANK[family] * 0.3 * rank
    optimizer = OPTIMIZER_BYTES.get(str(_get(data, "optimizer", "name", "adamw")), 8)
    trained = trainable * (8 + optimizer)

    native = FAMILIES[family].default_resolution if family in FAMILIES else 512
    resolution = int(_get(data, "data", "resolution", native))
    batch = int(_get(data, "training", "batch_size", 1))
    activations = ACTIVATIONS[family] * batch * (resolution / native) ** 2 * (bytes_per / 2)
    if _get(data, "training", "gradient_checkpointing", False):
        activations /= 3.5
    total = weights / GIB + trained / GIB + activations + OVERHEAD_GIB
    return VramEstimate(total, weights / GIB, trained / GIB, activations)
