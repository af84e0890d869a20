"""[optimizer]: which optimizer steps the trained weights, and its settings."""

from __future__ import annotations

from typing import Literal

from tuitrain.config.fields import Section, option


class OptimizerSection(Section):
    group = "optimizer"

    name: Literal["adamw", "adamw8bit", "prodigy", "lion8bit", "adafactor"] = option(
        "adamw",
        "adamw (fused on CUDA), adamw8bit and lion8bit (bitsandbytes, GPU only), prodigy "
        "(learning-rate free: set learning_rate = 1), adafactor.",
        level="essential",
    )
    weight_decay: float = option(0.01, "Decoupled weight decay.", ge=0.0, le=10.0)
    beta1: float = option(0.9, "First-moment decay (Adam, Lion, Prodigy).", ge=0.0, lt=1.0)
    beta2: float = option(0.999, "Second-moment decay (Adam, Lion, Prodigy).", ge=0.0, lt=1.0)
    eps: float = option(1e-8, "Numerical epsilon (Adam, Prodigy).", gt=0.0, le=1.0)
    d_coef: float = option(1.0, "Prodigy: scales the estimated step size (lower it if training overshoots).", gt=0.0, le=100.0)
    use_bias_correction: bool = option(False, "Prodigy: Adam-style bias correction.")
    safeguard_warmup: bool = option(False, "Prodigy: avoid a too-large step-size estimate during warm-up.")
    decouple: bool = option(True, "Prodigy: AdamW-style decoupled weight decay.")
    relative_step: bool = option(False, "Adafactor: its own time-dependent learning rate (ignores learning_rate).")
    scale_parameter: bool = option(False, "Adafactor: scale the learning rate by the parameter's RMS.")
