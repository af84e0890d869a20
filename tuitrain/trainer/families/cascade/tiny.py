"""The tiny Stable Cascade stage C for tests and the demo: the real classes (StableCascadeUNet prior, CLIP-G with
projection, DDPMWuerstchenScheduler in StableCascadePriorPipeline), tiny, plus a tiny EfficientNet encoder
saved as effnet/effnet_encoder.safetensors in the model folder (where the adapter finds it).

The pipeline's resolution_multiple is 8 (the public model's 42.67), so a 64 px image makes 8x8 latents as it
would a 24x24 one at 1024; the tiny encoder downscales by 4 (stem and one stage stride 2), so it sees 32 px.
Both flavours build the same tiny prior: model.flavour names which one it stands for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tuitrain.trainer.tiny import TINY_TEXT_DIM, text_config

TOKENIZERS = {"tokenizer": "!"}  # CLIP-G's byte-level tokenizer pads with "!" as OpenCLIP's does
TINY_MULTIPLE = 8.0
IMAGE_EMBED_DIM = 16  # the image-prompt embedding width (768 in the public prior), zeros in training


def tiny_effnet() -> Any:
    from tuitrain.trainer.families.cascade.effnet import EffNetConfig, EfficientNetEncoder, Stage

    config = EffNetConfig(stem_channels=8, stages=(Stage(True, 1, 3, 1, 8, 1), Stage(True, 2, 3, 2, 16, 1),
                                                   Stage(False, 2, 3, 1, 16, 2)), head_channels=32)
    encoder = EfficientNetEncoder(config)
    # The published encoder's last batch norm turns its features into latents of mean 0 and std 1; a random tiny
    # one's running statistics are set the same way, from random smooth images, so the latents have a real scale.
    import torch

    generator = torch.Generator().manual_seed(0)
    images = torch.nn.functional.interpolate(torch.rand(16, 3, 4, 4, generator=generator) * 2 - 1, size=(32, 32),
                                             mode="bilinear")
    with torch.no_grad():
        features = encoder.mapper[0](encoder.backbone(encoder.normalise(images)))
        norm = encoder.mapper[1]
        norm.running_mean.copy_(features.mean((0, 2, 3)))
        norm.running_var.copy_(features.var((0, 2, 3)))
    return encoder


def build(family: str, inpainting: bool, flavour: str) -> Any:
    from diffusers import DDPMWuerstchenScheduler, StableCascadePriorPipeline, StableCascadeUNet
    from transformers import CLIPTextModelWithProjection

    if inpainting:
        raise ValueError("Stable Cascade has no inpainting variant here")
    prior = StableCascadeUNet(
        in_channels=16, out_channels=16, timestep_ratio_embedding_dim=8, patch_size=1, conditioning_dim=32,
        block_out_channels=(32, 32), num_attention_heads=(2, 2), down_num_layers_per_block=(1, 1),
        up_num_layers_per_block=(1, 1), down_blocks_repeat_mappers=(1, 1), up_blocks_repeat_mappers=(1, 1),
        block_types_per_layer=(("SDCascadeResBlock", "SDCascadeTimestepBlock", "SDCascadeAttnBlock"),) * 2,
        clip_text_in_channels=TINY_TEXT_DIM, clip_text_pooled_in_channels=TINY_TEXT_DIM,
        clip_image_in_channels=IMAGE_EMBED_DIM, clip_seq=4, kernel_size=3, dropout=(0.0, 0.0), self_attn=True,
        timestep_conditioning_type=("sca", "crp"), switch_level=(False,),
    )
    return StableCascadePriorPipeline(
        tokenizer=None,
        text_encoder=CLIPTextModelWithProjection(text_config(with_projection=True)),
        prior=prior,
        scheduler=DDPMWuerstchenScheduler(),
        resolution_multiple=TINY_MULTIPLE,
    )


def save_extras(folder: Path, index: dict[str, Any]) -> None:
    """The tiny EfficientNet beside the pipeline (the adapter's usual place for it)."""
    tiny_effnet().save(folder / "effnet")


def build_decoder() -> Any:
    """A tiny StableCascadeDecoderPipeline (stage B: a StableCascadeUNet on effnet latents and pooled CLIP-G; stage A:
    PaellaVQModel): 8x8 prior latents -> 16x16 stage-B latents (latent_dim_scale 2, the public 10.67) -> 64 px."""
    from diffusers import DDPMWuerstchenScheduler, StableCascadeDecoderPipeline, StableCascadeUNet
    from diffusers.pipelines.deprecated.wuerstchen.modeling_paella_vq_model import PaellaVQModel
    from transformers import CLIPTextModelWithProjection

    decoder = StableCascadeUNet(
        in_channels=4, out_channels=4, timestep_ratio_embedding_dim=8, patch_size=1, conditioning_dim=32,
        block_out_channels=(16, 32), num_attention_heads=(0, 2), down_num_layers_per_block=(1, 1),
        up_num_layers_per_block=(1, 1), down_blocks_repeat_mappers=(1, 1), up_blocks_repeat_mappers=(1, 1),
        block_types_per_layer=(("SDCascadeResBlock", "SDCascadeTimestepBlock"),
                               ("SDCascadeResBlock", "SDCascadeTimestepBlock", "SDCascadeAttnBlock")),
        clip_text_pooled_in_channels=TINY_TEXT_DIM, clip_seq=4, effnet_in_channels=16, pixel_mapper_in_channels=3,
        kernel_size=3, dropout=(0.0, 0.0), self_attn=True, timestep_conditioning_type=("sca",), switch_level=None,
    )
    vqgan = PaellaVQModel(levels=2, bottleneck_blocks=1, embed_dim=16, latent_channels=4, num_vq_embeddings=32)
    return StableCascadeDecoderPipeline(decoder=decoder, tokenizer=None,
                                        text_encoder=CLIPTextModelWithProjection(text_config(with_projection=True)),
                                        scheduler=DDPMWuerstchenScheduler(), vqgan=vqgan, latent_dim_scale=2.0)


def save_tiny_decoder(folder: Path, seed: int = 0) -> Path:
    """The tiny decoder as a diffusers folder with its CLIP-G tokenizer (what cascade.decoder names)."""
    import json

    import torch
    from transformers import CLIPTokenizer

    from tuitrain.trainer.tiny import write_byte_level_clip_tokenizer

    torch.manual_seed(seed)
    build_decoder().save_pretrained(folder, safe_serialization=True)
    write_byte_level_clip_tokenizer(folder / "tokenizer", pad_token=TOKENIZERS["tokenizer"])
    index = json.loads((folder / "model_index.json").read_text())
    index["tokenizer"] = ["transformers", CLIPTokenizer.__name__]
    (folder / "model_index.json").write_text(json.dumps(index, indent=2))
    return folder
