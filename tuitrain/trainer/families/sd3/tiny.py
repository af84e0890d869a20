"""The tiny SD3 model for tests: the real classes (MMDiT, two CLIPs with projection + T5, 16-channel VAE), tiny."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tuitrain.trainer.tiny import TINY_TEXT_DIM, t5_tokenizer, text_config, tiny_t5, tiny_vae

# Both CLIP tokenizers (byte-level, written by save_tiny_model; the second pads with "!" as OpenCLIP-G's).
TOKENIZERS = {"tokenizer": "<|endoftext|>", "tokenizer_2": "!"}
# CLIP-G wider than CLIP-L, as in SD3 (1280 vs 768): diffusers' single-file loader tells the two apart by width.
CLIP_G_DIM = 48
T5_DIM = TINY_TEXT_DIM + CLIP_G_DIM  # T5 is at least as wide as both CLIP hidden states joined, as in SD3


def clip_g_config() -> Any:
    config = text_config(with_projection=True)
    config.hidden_size, config.projection_dim, config.intermediate_size = CLIP_G_DIM, CLIP_G_DIM, 2 * CLIP_G_DIM
    return config


def build(family: str, inpainting: bool, flavour: str) -> Any:
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline
    from transformers import CLIPTextModelWithProjection

    if inpainting:
        raise ValueError("SD3 has no inpainting variant here")
    transformer = SD3Transformer2DModel(
        sample_size=32, patch_size=2, in_channels=16, num_layers=2, attention_head_dim=8, num_attention_heads=4,
        joint_attention_dim=T5_DIM, caption_projection_dim=32, pooled_projection_dim=TINY_TEXT_DIM + CLIP_G_DIM,
        out_channels=16, pos_embed_max_size=32, qk_norm="rms_norm",
        dual_attention_layers=(0,) if flavour == "3.5-medium" else (),
    )
    t5 = tiny_t5(T5_DIM)
    return StableDiffusion3Pipeline(
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0),
        vae=tiny_vae(16, scaling_factor=1.5305, shift_factor=0.0609, use_quant_conv=False, use_post_quant_conv=False),
        text_encoder=CLIPTextModelWithProjection(text_config(with_projection=True)),
        tokenizer=None,
        text_encoder_2=CLIPTextModelWithProjection(clip_g_config()),
        tokenizer_2=None,
        text_encoder_3=t5,
        tokenizer_3=None,
    )


def save_extras(folder: Path, index: dict[str, Any]) -> None:
    """The T5 tokenizer's files, and model_index.json pointing at them."""
    t5_tokenizer().save_pretrained(folder / "tokenizer_3")
    index["tokenizer_3"] = ["transformers", "T5TokenizerFast"]
