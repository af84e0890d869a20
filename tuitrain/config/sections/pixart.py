"""[pixart]: PixArt-α / Σ's own settings (model.family = "pixart"); other families ignore the section."""

from __future__ import annotations

from tuitrain.config.fields import Section, option


class PixArtSection(Section):
    """PixArt-α / Σ's own settings (model.family = "pixart"); other families ignore the section."""

    group = "model"

    t5_max_length: int = option(
        0,
        "T5 tokens per caption, padding masked out. 0: the flavour's (Σ 300, α 120, the pipelines' defaults). "
        "Fewer is faster for short captions; more than the flavour's lets α see long captions it never trained on.",
        family="pixart", ge=0, le=512,
    )
