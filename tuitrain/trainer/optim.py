"""Optimizers and learning-rate schedules, from the field's libraries.

Which library gives each optimizer, and why that one:
  adamw, sgd: torch (fused / foreach kernels are torch's own).
  adamw8bit, lion8bit (optimizer.paged: their Paged* twins): bitsandbytes, the 8-bit blockwise states
    every trainer uses. bitsandbytes 0.50 runs them on the CPU too (measured: the states are uint8 there
    as on CUDA); paged memory is CUDA's, so off CUDA paged = true builds the plain 8-bit optimizer (the
    same update; bitsandbytes would fall back itself, with a warning at every new state).
  prodigy: prodigyopt (the authors'); prodigy_schedulefree: prodigy-plus-schedule-free (the package
    OneTrainer and kohya users take it from); adamw_schedulefree: schedulefree (Meta's, the paper's).
  came: came-pytorch (the paper authors' reference); adafactor: transformers.
  adamw_bf16: tuitrain/trainer/bf16_adamw.py says why it is our own.
Schedules: diffusers.optimization (constant, linear, cosine, restarts, polynomial), transformers
(cosine with a minimum LR), and tuitrain.schedules' formula for REX, which neither has.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

from tuitrain.config.schema import OptimizerSection, TrainingSection
from tuitrain.schedules import Schedule, warmup_steps


class OptimizerUnavailable(RuntimeError):
    """The chosen optimizer cannot run here; the message says why and what to pick instead."""


def build_optimizer(groups: list[dict[str, Any]], opt: OptimizerSection, lr: float, device: torch.device,
                    seed: int = 0) -> torch.optim.Optimizer:
    """`groups` are parameter groups ({"params": [...], "lr": ...}); lr is the default.

    seed: adamw_bf16's stochastic rounding draws from it (training.seed). A schedule-free optimizer is
    returned in train mode (see output_weights for the switch around saves and samples).
    """
    betas = (opt.beta1, opt.beta2)
    name = opt.name
    if name == "adamw":
        kernel = {"fused": {"fused": True}, "foreach": {"foreach": True}, "loop": {"foreach": False, "fused": False},
                  "auto": {"fused": True} if device.type == "cuda" else {}}[opt.kernel]
        return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=opt.eps, weight_decay=opt.weight_decay, **kernel)
    if name in ("adamw8bit", "lion8bit"):
        import bitsandbytes as bnb

        cls = {"adamw8bit": bnb.optim.AdamW8bit, "lion8bit": bnb.optim.Lion8bit}[name]
        if opt.paged and device.type == "cuda":
            cls = {"adamw8bit": bnb.optim.PagedAdamW8bit, "lion8bit": bnb.optim.PagedLion8bit}[name]
        if name == "adamw8bit":
            return cls(groups, lr=lr, betas=betas, eps=opt.eps, weight_decay=opt.weight_decay)
        return cls(groups, lr=lr, betas=betas, weight_decay=opt.weight_decay)
    if name == "prodigy":
        from prodigyopt import Prodigy

        return Prodigy(
            groups, lr=lr, betas=betas, eps=opt.eps, weight_decay=opt.weight_decay, d_coef=opt.d_coef,
            use_bias_correction=opt.use_bias_correction, safeguard_warmup=opt.safeguard_warmup,
            decouple=opt.decouple,
        )
    if name == "prodigy_schedulefree":
        from prodigyplus import ProdigyPlusScheduleFree

        optimizer = ProdigyPlusScheduleFree(
            groups, lr=lr, betas=betas, eps=opt.eps, weight_decay=opt.weight_decay, d_coef=opt.d_coef,
            use_bias_correction=opt.use_bias_correction,
        )
        optimizer.train()
        return optimizer
    if name == "adamw_schedulefree":
        from schedulefree import AdamWScheduleFree

        optimizer = AdamWScheduleFree(groups, lr=lr, betas=betas, eps=opt.eps, weight_decay=opt.weight_decay,
                                      warmup_steps=opt.schedulefree_warmup_steps)
        optimizer.train()  # it starts in eval mode and refuses to step there
        return optimizer
    if name == "came":
        from came_pytorch import CAME

        return CAME(groups, lr=lr, betas=(opt.beta1, opt.beta2, opt.beta3), weight_decay=opt.weight_decay)
    if name == "adafactor":
        from transformers.optimization import Adafactor

        return Adafactor(
            groups, lr=None if opt.relative_step else lr, relative_step=opt.relative_step,
            scale_parameter=opt.scale_parameter, warmup_init=False, weight_decay=opt.weight_decay,
        )
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=opt.momentum, nesterov=opt.nesterov,
                               weight_decay=opt.weight_decay)
    if name == "adamw_bf16":
        from tuitrain.trainer.bf16_adamw import AdamWBf16

        return AdamWBf16(groups, lr=lr, betas=betas, eps=opt.eps, weight_decay=opt.weight_decay, seed=seed)
    raise OptimizerUnavailable(f"optimizer.name: unknown optimizer {name!r}")


def _unwrapped(optimizer: Any) -> Any:
    """The library's optimizer inside accelerate's AcceleratedOptimizer (itself when not wrapped)."""
    return getattr(optimizer, "optimizer", optimizer)


def is_schedule_free(optimizer: Any) -> bool:
    """Schedule-free optimizers train on one point (y) and evaluate on another (x): they have train() / eval()."""
    inner = _unwrapped(optimizer)
    return callable(getattr(inner, "eval", None)) and callable(getattr(inner, "train", None))


@contextlib.contextmanager
def output_weights(optimizer: Any, params: list[torch.nn.Parameter]) -> Iterator[None]:
    """A context in which a schedule-free optimizer's weights are its averaged ones (what to save or sample).

    eval() then train() is a round trip through floating-point lerps that does not give back the same
    bits, and a save or sample would then change the run: a run resumed from a backup made before a
    sample would no longer match the run that sampled. So the training weights are copied aside and
    put back exactly. Other optimizers: nothing to do.
    """
    if not is_schedule_free(optimizer):
        yield
        return
    inner = _unwrapped(optimizer)
    kept = [p.detach().clone() for p in params]
    inner.eval()
    try:
        yield
    finally:
        inner.train()
        with torch.no_grad():
            for p, value in zip(params, kept):
                p.copy_(value)


def schedule_of(training: TrainingSection, total_steps: int) -> Schedule:
    """The run's schedule as tuitrain.schedules describes it (warm-up resolved to steps)."""
    return Schedule(
        training.lr_scheduler, max(1, total_steps),
        warmup_steps(total_steps, training.lr_warmup_steps, training.lr_warmup_fraction),
        cycles=training.lr_cycles, power=training.lr_power, min_ratio=training.lr_min_ratio,
    )


def build_scheduler(optimizer: torch.optim.Optimizer, training: TrainingSection, total_steps: int) -> Any:
    """The library scheduler for training.lr_scheduler (tuitrain.schedules gives the same factors)."""
    from diffusers.optimization import get_polynomial_decay_schedule_with_warmup, get_scheduler
    from torch.optim.lr_scheduler import LambdaLR

    s = schedule_of(training, total_steps)
    name = s.name
    if name == "cosine_with_min_lr":
        from transformers.optimization import get_cosine_with_min_lr_schedule_with_warmup

        return get_cosine_with_min_lr_schedule_with_warmup(optimizer, s.warmup_steps, s.total_steps,
                                                           min_lr_rate=s.min_ratio)
    if name == "polynomial" and s.total_steps > s.warmup_steps:
        return get_polynomial_decay_schedule_with_warmup(
            optimizer, s.warmup_steps, s.total_steps, lr_end=optimizer.defaults["lr"] * s.min_ratio, power=s.power)
    if name in ("rex", "polynomial"):
        # REX: no library has it. Polynomial whose warm-up fills the run: diffusers divides by zero there.
        return LambdaLR(optimizer, lambda step: s.factor(step))
    kwargs: dict[str, Any] = {"num_cycles": s.cycles} if name == "cosine_with_restarts" else {}
    return get_scheduler(name, optimizer=optimizer, num_warmup_steps=s.warmup_steps,
                         num_training_steps=s.total_steps, **kwargs)
