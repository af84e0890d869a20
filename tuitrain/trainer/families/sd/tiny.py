"""The tiny SD 1.x / SD 2.x model for tests and the demo: the real classes at a few hundred thousand parameters."""

from __future__ import annotations

from typing import Any

from tuitrain.families import FAMILIES
from tuitrain.trainer.families.files import INPAINT_CHANNELS
from tuitrain.trainer.tiny import TINY_TEXT_DIM, ddpm_scheduler, text_config, tiny_vae

# Tokenizer folders and their pad token (save_tiny_model writes byte-level CLIP tokenizers there).
TOKENIZERS = {"tokenizer": "<|endoftext|>"}


def build(family: str, inpainting: bool, flavour: str) -> Any:
    import diffusers
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextModel

    cls = diffusers.StableDiffusionInpaintPipeline if inpainting else diffusers.StableDiffusionPipeline
    sd2 = family == "sd2"  # SD 2.x: linear projections, per-block head dims, v-prediction
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=INPAINT_CHANNELS if inpainting else 4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        block_out_channels=(32, 64),
        layers_per_block=1,
        cross_attention_dim=TINY_TEXT_DIM,
        attention_head_dim=(2, 4) if sd2 else 8,
        use_linear_projection=sd2,
        norm_num_groups=8,
    )
    return cls(
        vae=tiny_vae(),
        text_encoder=CLIPTextModel(text_config()),
        tokenizer=None,  # written as files in save_tiny_model
        unet=unet,
        scheduler=ddpm_scheduler(FAMILIES[family].flavour(flavour).prediction),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
