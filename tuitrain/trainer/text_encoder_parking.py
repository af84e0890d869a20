"""Text encoders off the GPU once every caption's embedding is cached (model.text_encoders_after_caching).

FLUX.1's T5-XXL is 9.5 GB in bf16: a LoRA run whose captions are all cached never runs it after the
first encoding, so it waits in host memory instead of VRAM, and comes back only for what needs it
(samples' prompts, an uncached caption such as a held-out image's). When the captions are not all
cacheable (shuffle_tags, caption dropout, prompt files, trained text encoders: loop._text_cacheable)
the encoders stay where place() put them.

Why not diffusers' enable_model_cpu_offload: it moves every component on and off around each
pipeline call (the denoiser too) and hooks their forwards; the trainer calls the denoiser itself
and needs it to stay put. Moving two modules at the two moments they are needed is all this takes.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterator
from typing import Any

import torch


class TextEncoderParking:
    """Where the text encoders wait: `park()` sends them to the host, `on_device()` brings them back for a while."""

    def __init__(self, text_encoders: list[torch.nn.Module], device: torch.device) -> None:
        self.text_encoders = text_encoders
        self.device = device
        self.parked = False

    def park(self) -> bool:
        """Move the text encoders to the host; True when that freed device memory (a GPU run)."""
        self.parked = True
        if self.device.type == "cpu":
            return False
        for module in self.text_encoders:
            move(module, torch.device("cpu"))
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        return True

    @contextlib.contextmanager
    def on_device(self) -> Iterator[None]:
        """The text encoders on the training device inside the block (parked again after it)."""
        moved = self.parked and self.device.type != "cpu"
        if moved:
            for module in self.text_encoders:
                move(module, self.device)
        try:
            yield
        finally:
            if moved:
                for module in self.text_encoders:
                    move(module, torch.device("cpu"))


def move(module: torch.nn.Module, device: torch.device) -> None:
    """`module.to(device)`, and bitsandbytes int8 layers' own weight copies with it: Linear8bitLt keeps the int8
    matrix and its scales in `state.CB` / `state.SCB` after its first forward, which Module.to does not see (only
    the layer's own .to moves them), so a parked int8 T5 kept ~4.7 GB on the GPU (found by review)."""
    module.to(device)
    for layer in module.modules():
        state = getattr(layer, "state", None)
        cb = getattr(state, "CB", None)
        if not isinstance(cb, torch.Tensor):
            continue
        weight = getattr(layer, "weight", None)
        if isinstance(weight, torch.Tensor) and weight.shape == cb.shape and weight.dtype == cb.dtype:
            state.CB = weight.data  # the same matrix (bitsandbytes aliases them): no second copy
        else:
            state.CB = cb.to(device)
        if isinstance(getattr(state, "SCB", None), torch.Tensor):
            state.SCB = state.SCB.to(device)


def fixed_captions(data: Any) -> list[str]:
    """Every distinct caption the run trains with, when captions are fixed (no shuffle, dropout or prompt
    file: loop._text_cacheable), in first-seen order."""
    seen: dict[str, None] = {}
    for sample in data.samples:
        seen.setdefault(data.caption(sample, random.Random(0)), None)
    return list(seen)


def cache_every_caption(captions: list[str], encode: Callable[[list[str]], Any]) -> int:
    """Encode each caption once through `encode` (the trainer's cached conditioning); returns how many."""
    with torch.no_grad():
        for caption in captions:
            encode([caption])
    return len(captions)
