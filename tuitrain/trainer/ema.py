"""An exponential moving average of the trained weights, through diffusers' EMAModel.

ema.mode = "gpu" keeps the average beside the weights; "cpu" keeps it in host memory
and feeds EMAModel host copies of the weights (EMAModel itself mixes devices badly:
its update subtracts a GPU tensor from a CPU one), which costs one device-to-host
copy per update, so ema.update_every matters there. The average is what gets
saved and (with sample_with_ema) what samples are drawn with; it is part of every
backup, so a resumed run continues the same average.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from tuitrain.config.schema import EmaSection


class Ema:
    def __init__(self, params: list[nn.Parameter], cfg: EmaSection, device: torch.device) -> None:
        from diffusers.training_utils import EMAModel

        self.params = params
        self.cfg = cfg
        # Normalised ("cuda" -> "cuda:0"): parameters report an index, and the two do not compare equal,
        # which would send gpu mode down the copying path on every update.
        self.device = _normalised(device) if cfg.mode == "gpu" else torch.device("cpu")
        # foreach: one fused kernel per update instead of one per tensor; not over a mix of sharded (FSDP's
        # DTensor) and plain weights, which torch's foreach ops refuse (an FSDP denoiser with DDP text encoders).
        from tuitrain.trainer.fsdp import mixes_sharded

        self.model = EMAModel(self._view(), decay=cfg.decay, foreach=not mixes_sharded(params))
        self.model.to(self.device)

    def _view(self) -> list[torch.Tensor]:
        """The weights as EMAModel should see them: themselves (gpu) or host copies marked trainable (cpu)."""
        if not self.params or _normalised(self.params[0].device) == self.device:
            return list(self.params)
        # requires_grad on the copies: EMAModel averages only parameters that train, else it copies them.
        return [p.detach().to(self.device).requires_grad_(True) for p in self.params]

    @torch.no_grad()
    def update(self, step: int) -> None:
        """Called after optimizer step number `step` (1-based)."""
        if step % self.cfg.update_every == 0:
            self.model.step(self._view())

    @contextmanager
    def applied(self) -> Iterator[None]:
        """Within the block, the model's weights are the averages; afterwards exactly what they were.

        The live weights wait in host memory (as EMAModel.store keeps them), not beside the model:
        a second copy of a fine-tuned UNet on the GPU is what ema.mode = "cpu" is there to avoid.
        """
        saved = [p.detach().to("cpu", copy=True) for p in self.params]
        with torch.no_grad():
            for param, average in zip(self.params, self.model.shadow_params):
                param.copy_(average.to(param.device, param.dtype))
        try:
            yield
        finally:
            with torch.no_grad():
                for param, value in zip(self.params, saved):
                    param.copy_(value.to(param.device))

    def state_dict(self) -> dict[str, Any]:
        state = self.model.state_dict()
        state["shadow_params"] = [t.detach().cpu().clone() for t in state["shadow_params"]]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state)
        self.model.to(self.device)


def _normalised(device: torch.device) -> torch.device:
    """cuda -> cuda:N (the current device), so devices compare as parameters report them."""
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return device
