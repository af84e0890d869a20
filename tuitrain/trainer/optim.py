"""Optimizers and learning-rate schedules, from the field's libraries.

adamw: torch (fused on CUDA); adamw8bit / lion8bit: bitsandbytes; prodigy:
prodigyopt; adafactor: transformers. Schedules: diffusers.optimization.get_scheduler.
"""

from __future__ import annotations

from typing import Any

import torch

from tuitrain.config.schema import OptimizerSection, TrainingSection


class OptimizerUnavailable(RuntimeError):
    """The chosen optimizer cannot run here; the message says why and what to pick instead."""


def build_optimizer(groups: list[dict[str, Any]], opt: OptimizerSection, lr: float, device: torch.device) -> torch.optim.Optimizer:
    """`groups` are parameter groups ({"params": [...], "lr": ...}); lr is the default."""
    betas = (opt.beta1, opt.beta2)
    if opt.name == "adamw":
        fused = device.type == "cuda"
        return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=opt.eps, weight_decay=opt.weight_decay, fused=fused)
    if opt.name in ("adamw8bit", "lion8bit"):
        if device.type != "cuda":
            raise OptimizerUnavailable(
                f"optimizer.name: {opt.name} (bitsandbytes 8-bit) needs a CUDA GPU; this run is on "
                f"{device.type}. Use adamw, prodigy or adafactor here."
            )
        import bitsandbytes as bnb

        if opt.name == "adamw8bit":
            return bnb.optim.AdamW8bit(groups, lr=lr, betas=betas, eps=opt.eps, weight_decay=opt.weight_decay)
        return bnb.optim.Lion8bit(groups, lr=lr, betas=betas, weight_decay=opt.weight_decay)
    if opt.name == "prodigy":
        from prodigyopt import Prodigy

        return Prodigy(
            groups, lr=lr, betas=betas, eps=opt.eps, weight_decay=opt.weight_decay, d_coef=opt.d_coef,
            use_bias_correction=opt.use_bias_correction, safeguard_warmup=opt.safeguard_warmup,
            decouple=opt.decouple,
        )
    if opt.name == "adafactor":
        from transformers.optimization import Adafactor

        return Adafactor(
            groups, lr=None if opt.relative_step else lr, relative_step=opt.relative_step,
            scale_parameter=opt.scale_parameter, warmup_init=False, weight_decay=opt.weight_decay,
        )
    raise OptimizerUnavailable(f"optimizer.name: unknown optimizer {opt.name!r}")


def build_scheduler(optimizer: torch.optim.Optimizer, training: TrainingSection, total_steps: int) -> Any:
    from diffusers.optimization import get_scheduler

    kwargs: dict[str, Any] = {}
    if training.lr_scheduler == "cosine_with_restarts":
        kwargs["num_cycles"] = training.lr_cycles
    return get_scheduler(
        training.lr_scheduler,
        optimizer=optimizer,
        num_warmup_steps=training.lr_warmup_steps,
        num_training_steps=max(1, total_steps),
        **kwargs,
    )
