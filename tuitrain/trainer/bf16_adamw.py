"""AdamW with stochastic rounding for bf16 weights (optimizer.name = "adamw_bf16").

Written here rather than taken from a library: torchao's AdamW has the same option
(bf16_stochastic_round) but torchao is no dependency of tuitrain and compiles its step with
torch.compile (a C++ toolchain, and minutes of compiling on a CPU); torch's and bitsandbytes'
optimizers round to nearest. With round-to-nearest, an update smaller than half a bf16 step
(~0.4 % of the weight) is lost every time, so bf16 weights stop learning at small learning
rates; stochastic rounding (Gupta et al. 2015; Zamirai et al. 2020) rounds up with the
probability of the remainder, so the expected weight follows the fp32 update.

The moments are fp32 whatever the weight's dtype; fp32 weights step exactly as AdamW does.
The rounding draws from a generator seeded by (seed, step): a resumed run rounds as the
uninterrupted run did.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

_LOW_BITS = 1 << 16  # fp32 bits below bf16's mantissa


def stochastic_round_to_bf16(values: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """fp32 `values` as bf16, each rounded up with the probability of its remainder below bf16's precision.

    Adds a uniform random integer in [0, 2^16) to the fp32 bit pattern and truncates the low 16
    bits: the value lands on the next bf16 with probability remainder / step (exact in expectation).
    """
    bits = values.contiguous().view(torch.int32)
    noise = torch.randint(0, _LOW_BITS, values.shape, generator=generator, device=values.device, dtype=torch.int32)
    rounded = (bits + noise) & -_LOW_BITS  # -65536 is 0xFFFF0000: keeps sign, exponent and bf16's mantissa
    out = rounded.view(torch.float32)
    # Inf and NaN keep their bits (adding noise could turn the largest finite values into inf, as rounding would).
    out = torch.where(torch.isfinite(values), out, values)
    return out.to(torch.bfloat16)  # exact: the low bits are zero


class AdamWBf16(torch.optim.Optimizer):
    """AdamW (decoupled weight decay, bias correction) whose bf16 weights are rounded stochastically."""

    def __init__(self, params: Iterable[Any], lr: float = 1e-4, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.01, seed: int = 0) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))
        self.seed = seed

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        generators: dict[torch.device, torch.Generator] = {}
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr, eps, decay = group["lr"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = torch.tensor(0.0)
                    state["exp_avg"] = torch.zeros_like(p, dtype=torch.float32, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, dtype=torch.float32, memory_format=torch.preserve_format)
                state["step"] += 1
                step = int(state["step"].item())
                grad = p.grad.float()
                weight = p.float()
                weight.mul_(1 - lr * decay)
                state["exp_avg"].lerp_(grad, 1 - beta1)
                state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                denom = (state["exp_avg_sq"].sqrt() / math.sqrt(1 - beta2**step)).add_(eps)
                weight.addcdiv_(state["exp_avg"], denom, value=-lr / (1 - beta1**step))
                if p.dtype == torch.bfloat16:
                    gen = generators.get(p.device)
                    if gen is None:  # one generator per device and step, seeded by the step: resumable
                        gen = generators[p.device] = torch.Generator(device=p.device).manual_seed(
                            (self.seed * 1_000_003 + step) % 2**63)
                    p.copy_(stochastic_round_to_bf16(weight, gen))
                else:
                    p.copy_(weight)
        return loss
