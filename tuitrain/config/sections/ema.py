"""[ema]: An exponential moving average of the trained weights."""

from __future__ import annotations

from typing import Literal

from tuitrain.config.fields import Section, option


class EmaSection(Section):
    """An exponential moving average of the trained weights."""

    group = "training"

    mode: Literal["off", "gpu", "cpu"] = option(
        "off", "Keep an EMA of the trained weights: off, gpu (fast, uses VRAM) or cpu (saves VRAM, slower)."
    )
    decay: float = option(0.999, "EMA decay per update (closer to 1: a longer memory).", ge=0.0, lt=1.0)
    update_every: int = option(1, "Update the EMA every N optimizer steps.", ge=1, le=10000)
    sample_with_ema: bool = option(True, "Draw samples with the EMA weights (they are also what gets saved).")
