"""The tiny PixArt model for tests and the demo: the real classes (DiT with learned sigma, T5, 4-channel VAE), tiny.

Flavour alpha: PixArtAlphaPipeline with the micro-conditions (resolution / aspect ratio) of PixArt-α 1024 and
the SD VAE's scaling factor; sigma: PixArtSigmaPipeline without them and the SDXL VAE's. Both use the
original linear beta schedule (1e-4 to 0.02) in the DPM-Solver sampler their diffusers folders ship.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tuitrain.trainer.tiny import TINY_TEXT_DIM, t5_tokenizer, tiny_t5, tiny_vae

TOKENIZERS: dict[str, str] = {}  # no CLIP tokenizer; save_extras writes T5's


def build(family: str, inpainting: bool, flavour: str) -> Any:
    from diffusers import DPMSolverMultistepScheduler, PixArtAlphaPipeline, PixArtSigmaPipeline, PixArtTransformer2DModel

    if inpainting:
        raise ValueError("PixArt has no inpainting variant here")
    alpha = flavour == "alpha"
    transformer = PixArtTransformer2DModel(
        # inner width 24: α's micro-condition embedders split it in three, as 1152 is in the real model
        num_attention_heads=3, attention_head_dim=8, in_channels=4, out_channels=8, num_layers=2,
        # sample_size 128 as the 1024 models: PixArtAlphaPipeline passes the micro-conditions only at that size
        cross_attention_dim=24, caption_channels=TINY_TEXT_DIM, sample_size=128, patch_size=2, attention_bias=True,
        activation_fn="gelu-approximate", num_embeds_ada_norm=1000, norm_type="ada_norm_single",
        norm_elementwise_affine=False, norm_eps=1e-6, use_additional_conditions=alpha, interpolation_scale=2,
    )
    pipeline = PixArtAlphaPipeline if alpha else PixArtSigmaPipeline
    return pipeline(
        tokenizer=None,
        text_encoder=tiny_t5(TINY_TEXT_DIM),
        vae=tiny_vae(4, scaling_factor=0.18215 if alpha else 0.13025),
        transformer=transformer,
        scheduler=DPMSolverMultistepScheduler(beta_schedule="linear", beta_start=0.0001, beta_end=0.02,
                                              num_train_timesteps=1000, prediction_type="epsilon"),
    )


def save_extras(folder: Path, index: dict[str, Any]) -> None:
    """The T5 tokenizer's files, and model_index.json pointing at them."""
    t5_tokenizer().save_pretrained(folder / "tokenizer")
    index["tokenizer"] = ["transformers", "T5TokenizerFast"]
