"""[optimizer]: which optimizer steps the trained weights, and its settings.

Each option's help names the optimizers that read it, and OPTIONS_OF says the same as data: the
config editor shows an optimizer's own options only while it is the chosen one. Options of other
optimizers are ignored, not refused, so switching optimizer.name in the form keeps their values.
"""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from tuitrain.config.fields import Section, option

OptimizerName = Literal[
    "adamw", "adamw8bit", "lion8bit", "prodigy", "prodigy_schedulefree", "adamw_schedulefree", "came", "adafactor",
    "sgd", "adamw_bf16",
]

ADAM_LIKE = ("adamw", "adamw8bit", "adamw_schedulefree", "adamw_bf16")
# optimizer.NAME option -> the optimizers that read it (weight_decay: every one).
OPTIONS_OF: dict[str, tuple[str, ...]] = {
    "beta1": (*ADAM_LIKE, "lion8bit", "prodigy", "prodigy_schedulefree", "came"),
    "beta2": (*ADAM_LIKE, "lion8bit", "prodigy", "prodigy_schedulefree", "came"),
    "beta3": ("came",),
    "eps": (*ADAM_LIKE, "prodigy", "prodigy_schedulefree"),
    "kernel": ("adamw",),
    "paged": ("adamw8bit", "lion8bit"),
    "d_coef": ("prodigy", "prodigy_schedulefree"),
    "use_bias_correction": ("prodigy", "prodigy_schedulefree"),
    "safeguard_warmup": ("prodigy",),
    "decouple": ("prodigy",),
    "relative_step": ("adafactor",),
    "scale_parameter": ("adafactor",),
    "momentum": ("sgd",),
    "nesterov": ("sgd",),
    "schedulefree_warmup_steps": ("adamw_schedulefree",),
}


class OptimizerSection(Section):
    group = "optimizer"

    name: OptimizerName = option(
        "adamw",
        "adamw (torch; kernel picks fused / foreach); adamw8bit, lion8bit (bitsandbytes 8-bit states, on GPUs "
        "and CPUs; paged: paged AdamW / Lion); prodigy (learning-rate free: set learning_rate = 1); prodigy_schedulefree (Prodigy + "
        "schedule-free, prodigy-plus-schedule-free: learning_rate = 1, constant schedule); adamw_schedulefree "
        "(schedulefree: no decay schedule needed, use constant); came (CAME, Adafactor-like memory); adafactor "
        "(transformers); sgd (with momentum); adamw_bf16 (AdamW that rounds bf16 weights stochastically, so "
        "small updates are not lost: a fine-tune with training.mixed_precision = bf16 then keeps its weights in "
        "bf16, half of fp32's memory; fp32 weights step as plain AdamW).",
        level="essential",
    )
    weight_decay: float = option(0.01, "Decoupled weight decay (every optimizer).", ge=0.0, le=10.0)
    beta1: float = option(0.9, "First-moment decay (Adam kinds, Lion, Prodigy, CAME).", ge=0.0, lt=1.0)
    beta2: float = option(0.999, "Second-moment decay (Adam kinds, Lion, Prodigy, CAME).", ge=0.0, lt=1.0)
    eps: float = option(1e-8, "Numerical epsilon (Adam kinds, Prodigy).", gt=0.0, le=1.0)
    beta3: float = option(0.9999, "CAME: decay of its confidence (instability) estimate.", ge=0.0, lt=1.0)
    kernel: Literal["auto", "fused", "foreach", "loop"] = option(
        "auto",
        "adamw: torch's implementation. auto: fused on CUDA, foreach elsewhere; fused: one kernel for all "
        "weights (CUDA and CPU); foreach: batched ops; loop: one weight at a time (least memory).",
    )
    paged: bool = option(
        False,
        "adamw8bit, lion8bit: bitsandbytes' paged variant, whose states move to host memory when the GPU runs "
        "short (CUDA only: elsewhere the same update without paging).",
    )
    d_coef: float = option(
        1.0, "Prodigy, prodigy_schedulefree: scales the estimated step size (lower it if training overshoots).",
        gt=0.0, le=100.0,
    )
    use_bias_correction: bool = option(False, "Prodigy, prodigy_schedulefree: Adam-style bias correction.")
    safeguard_warmup: bool = option(False, "Prodigy: avoid a too-large step-size estimate during warm-up.")
    decouple: bool = option(True, "Prodigy: AdamW-style decoupled weight decay.")
    relative_step: bool = option(False, "Adafactor: its own time-dependent learning rate (ignores learning_rate).")
    scale_parameter: bool = option(False, "Adafactor: scale the learning rate by the parameter's RMS.")
    momentum: float = option(0.9, "sgd: momentum (0: plain SGD).", ge=0.0, lt=1.0)
    nesterov: bool = option(False, "sgd: Nesterov momentum (needs momentum > 0).")
    schedulefree_warmup_steps: int = option(
        0, "adamw_schedulefree: its own warm-up steps (use it instead of training.lr_warmup_steps).",
        ge=0, le=1_000_000,
    )

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self) -> OptimizerSection:
        if self.name == "sgd" and self.nesterov and not self.momentum:
            raise ValueError("nesterov: needs momentum > 0 (got momentum = 0)")
        return self


def optimizer_reads(option: str, name: str) -> bool:
    """Whether optimizer `name` reads optimizer.`option` (weight_decay and name: every one does)."""
    users = OPTIONS_OF.get(option)
    return users is None or name in users
