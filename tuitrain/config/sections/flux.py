"""[flux]: FLUX.1's own settings (model.family = "flux"); other families ignore the section."""

from __future__ import annotations

from typing import Literal

from tuitrain.config.fields import Section, option


class FluxSection(Section):
    """FLUX.1's own settings (model.family = "flux"); other families ignore the section."""

    group = "model"

    guidance: float = option(
        1.0,
        "The value fed to the guidance embedding while training (dev / krea, which are guidance-distilled; "
        "schnell has none). 1.0 keeps the distillation, as BFL-trained LoRAs expect; sampling uses "
        "sampling.cfg (3.5 is usual for dev).",
        family="flux", ge=0.0, le=30.0,
    )
    t5_max_length: int = option(
        0,
        "T5 tokens per caption. 0: the flavour's (dev/krea 512, schnell 256); fewer is faster for short captions.",
        family="flux", ge=0, le=512,
    )
    t5_attention_mask: bool = option(
        False,
        "Mask T5's padding tokens out of the transformer's attention, in training and in samples (SimpleTuner's "
        "flux_attention_masked_training), as de-distilled models trained that way (libreflux) expect. The BFL "
        "models were trained without it: leave it off for dev / schnell / krea LoRAs.",
        family="flux",
    )
    true_cfg: float = option(
        1.0,
        "Samples: real classifier-free guidance scale (FluxPipeline's true_cfg_scale: a second pass with the "
        "negative prompt, empty when none is set), for de-distilled models (fluxbooru- and libreflux-style) that "
        "need it; sampling.cfg still feeds the guidance embedding. 1: off (distilled models). Doubles sampling time.",
        family="flux", ge=1.0, le=30.0,
    )
    lora_layout: Literal["diffusers", "kohya"] = option(
        "diffusers",
        "Key names of the saved LoRA file. diffusers: transformer.<diffusers module>.lora_A/lora_B (diffusers, "
        "ComfyUI, Forge). kohya: lora_unet_<BFL module> with q/k/v fused as BFL fuses them (kohya sd-scripts and "
        "tools that read only its names; ComfyUI and Forge too). Both apply the same weights; LoKr / LoHa files "
        "keep their LyCORIS names.",
        family="flux",
    )
