"""The tiny SDXL model for tests and the demo: the real classes (size conditioning, two encoders), tiny."""

from __future__ import annotations

from typing import Any

from tuitrain.trainer.families.files import INPAINT_CHANNELS
from tuitrain.trainer.tiny import TINY_TEXT_DIM, ddpm_scheduler, text_config, tiny_vae

# SDXL's second tokenizer pads with "!" like OpenCLIP; the tiny model keeps that quirk.
TOKENIZERS = {"tokenizer": "<|endoftext|>", "tokenizer_2": "!"}


def build(family: str, inpainting: bool, flavour: str) -> Any:
    import diffusers
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    time_dim = 8
    cls = diffusers.StableDiffusionXLInpaintPipeline if inpainting else diffusers.StableDiffusionXLPipeline
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=INPAINT_CHANNELS if inpainting else 4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(32, 64),
        layers_per_block=1,
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=time_dim,
        transformer_layers_per_block=(1, 2),
        projection_class_embeddings_input_dim=6 * time_dim + TINY_TEXT_DIM,
        cross_attention_dim=2 * TINY_TEXT_DIM,
        norm_num_groups=8,
    )
    return cls(
        vae=tiny_vae(),
        text_encoder=CLIPTextModel(text_config()),
        text_encoder_2=CLIPTextModelWithProjection(text_config(with_projection=True)),
        tokenizer=None,
        tokenizer_2=None,
        unet=unet,
        scheduler=ddpm_scheduler("epsilon"),
        force_zeros_for_empty_prompt=True,
    )
