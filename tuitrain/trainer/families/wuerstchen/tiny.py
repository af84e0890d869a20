"""The tiny Würstchen v2 prior for tests and the demo: the real classes (WuerstchenPrior, CLIPTextModel,
DDPMWuerstchenScheduler in WuerstchenPriorPipeline), tiny, plus a tiny EfficientNet encoder with Würstchen's
affine last batch norm saved as effnet/effnet_encoder.safetensors in the model folder (where the adapter finds it).

The pipeline's resolution_multiple is 8 (the public model's 42.67), so a 64 px image makes 8x8 latents as it
would a 24x24 one at 1024; the tiny encoder downscales by 4 (cascade/tiny.py's), so it sees 32 px. Dropout is 0
(the public prior's 0.1), so the tests' outputs do not depend on the dropout draw. The output convolution starts small
(std 0.02, bias 0): the original Prior initialises it to zero (dome272/Wuerstchen, modules.py), so an untrained
prior's noise estimate is its input, not the arbitrary quotient a random layer makes of (x - a) / |1 - b|; not quite
zero, or no LoRA on the blocks before it could move the output at all (a trained prior's is far from zero).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from tuitrain.trainer.tiny import TINY_TEXT_DIM, text_config

TOKENIZERS = {"tokenizer": "!"}  # CLIP-bigG's tokenizer pads with "!" as OpenCLIP's does
TINY_MULTIPLE = 8.0


def tiny_effnet() -> Any:
    """cascade/tiny.py's encoder with an affine last batch norm (its weight 1, bias 0: the same latents)."""
    import torch

    from tuitrain.trainer.families.cascade.effnet import EfficientNetEncoder
    from tuitrain.trainer.families.cascade.tiny import tiny_effnet as cascade_effnet

    plain = cascade_effnet()
    encoder = EfficientNetEncoder(replace(plain.config, affine_norm=True))
    with torch.no_grad():
        encoder.load_state_dict(plain.state_dict(), strict=False)
    return encoder


def build(family: str, inpainting: bool, flavour: str) -> Any:
    from diffusers import DDPMWuerstchenScheduler, WuerstchenPriorPipeline
    from diffusers.pipelines.deprecated.wuerstchen import WuerstchenPrior
    from transformers import CLIPTextModel

    from tuitrain.trainer.families.wuerstchen.compat import restore_wuerstchen_package

    if inpainting:
        raise ValueError("Würstchen has no inpainting variant")
    restore_wuerstchen_package()  # so the folder saves (and loads) as warp-ai's does
    import torch

    prior = WuerstchenPrior(c_in=16, c=32, c_cond=TINY_TEXT_DIM, c_r=8, depth=2, nhead=2, dropout=0.0)
    with torch.no_grad():
        prior.out[1].weight.normal_(std=0.02)
        prior.out[1].bias.zero_()
    return WuerstchenPriorPipeline(tokenizer=None, text_encoder=CLIPTextModel(text_config()), prior=prior,
                                   scheduler=DDPMWuerstchenScheduler(), resolution_multiple=TINY_MULTIPLE)


def save_extras(folder: Path, index: dict[str, Any]) -> None:
    """The tiny EfficientNet beside the pipeline (the adapter's usual place for it)."""
    tiny_effnet().save(folder / "effnet")


def build_decoder() -> Any:
    """A tiny WuerstchenDecoderPipeline (stage B: WuerstchenDiffNeXt on the prior's effnet latents and CLIP-H text;
    stage A: PaellaVQModel): 8x8 prior latents -> 16x16 stage-B latents (latent_dim_scale 2, the public 10.67)
    -> 64 px."""
    from diffusers import DDPMWuerstchenScheduler, WuerstchenDecoderPipeline
    from diffusers.pipelines.deprecated.wuerstchen import PaellaVQModel, WuerstchenDiffNeXt
    from transformers import CLIPTextModel

    from tuitrain.trainer.families.wuerstchen.compat import restore_wuerstchen_package

    restore_wuerstchen_package()
    decoder = WuerstchenDiffNeXt(c_in=4, c_out=4, c_r=8, patch_size=1, c_cond=32, c_hidden=[16, 32], nhead=[-1, 2],
                                 blocks=[1, 1], level_config=["CT", "CTA"], inject_effnet=[False, True], effnet_embd=16,
                                 clip_embd=TINY_TEXT_DIM, dropout=0.0)
    vqgan = PaellaVQModel(levels=2, bottleneck_blocks=1, embed_dim=16, latent_channels=4, num_vq_embeddings=32)
    return WuerstchenDecoderPipeline(tokenizer=None, text_encoder=CLIPTextModel(text_config()), decoder=decoder,
                                     scheduler=DDPMWuerstchenScheduler(), vqgan=vqgan, latent_dim_scale=2.0)


def save_tiny_decoder(folder: Path, seed: int = 0) -> Path:
    """The tiny decoder as a diffusers folder with its tokenizer (what wuerstchen.decoder names)."""
    import json

    import torch
    from transformers import CLIPTokenizer

    from tuitrain.trainer.tiny import write_byte_level_clip_tokenizer

    torch.manual_seed(seed)
    build_decoder().save_pretrained(folder, safe_serialization=True)
    write_byte_level_clip_tokenizer(folder / "tokenizer", pad_token="!")
    index = json.loads((folder / "model_index.json").read_text())
    index["tokenizer"] = ["transformers", CLIPTokenizer.__name__]
    (folder / "model_index.json").write_text(json.dumps(index, indent=2))
    return folder
