"""[sd3]: SD3 / SD3.5's own settings (model.family = "sd3"); other families ignore the section."""

from __future__ import annotations

from tuitrain.config.fields import Section, option


class SD3Section(Section):
    """SD3 / SD3.5's own settings (model.family = "sd3"); other families ignore the section."""

    group = "model"

    drop_t5: bool = option(
        False,
        "Train and sample without T5: its part of the prompt embedding is zeros, as StableDiffusion3Pipeline "
        "makes it when text_encoder_3 is None (what SAI's T5-less setups run). T5-XXL (4.8B parameters) then "
        "never reaches the GPU and is dropped from memory after loading; a fine-tune's saved folder has no T5.",
        family="sd3",
    )
    t5_max_length: int = option(
        0,
        "T5 tokens per caption (the zeros' length with drop_t5). 0: 256, StableDiffusion3Pipeline's default; "
        "fewer is faster for short captions, up to 512.",
        family="sd3", ge=0, le=512,
    )
