"""The tiny FLUX.1 model for tests and the demo: the real classes (MMDiT, CLIP + T5, 16-channel VAE), tiny."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tuitrain.trainer.families.flux.files import SCHNELL_SCHEDULER
from tuitrain.trainer.tiny import TINY_TEXT_DIM, t5_tokenizer, text_config, tiny_t5, tiny_vae

# The CLIP tokenizer (byte-level, written by save_tiny_model); the T5 one is written by save_extras.
TOKENIZERS = {"tokenizer": "<|endoftext|>"}


def build(family: str, inpainting: bool, flavour: str) -> Any:
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextModel

    if inpainting:
        raise ValueError("FLUX.1 has no inpainting variant here")
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=64, num_layers=1, num_single_layers=1, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=TINY_TEXT_DIM, pooled_projection_dim=TINY_TEXT_DIM,
        guidance_embeds=flavour != "schnell", axes_dims_rope=(4, 4, 8),
    )
    t5 = tiny_t5(TINY_TEXT_DIM)
    # FLUX.1-dev's scheduler config (schnell: a static shift of 1, no dynamic shifting).
    schedule = (dict(SCHNELL_SCHEDULER) if flavour == "schnell" else
                {"shift": 3.0, "use_dynamic_shifting": True, "base_shift": 0.5, "max_shift": 1.15,
                 "base_image_seq_len": 256, "max_image_seq_len": 4096})
    return FluxPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, **schedule),
        vae=tiny_vae(16, scaling_factor=0.3611, shift_factor=0.1159, use_quant_conv=False, use_post_quant_conv=False),
        text_encoder=CLIPTextModel(text_config()),
        tokenizer=None,
        text_encoder_2=t5,
        tokenizer_2=None,
        transformer=transformer,
    )


def save_extras(folder: Path, index: dict[str, Any]) -> None:
    """The T5 tokenizer's files, and model_index.json pointing at them."""
    t5_tokenizer().save_pretrained(folder / "tokenizer_2")
    index["tokenizer_2"] = ["transformers", "T5TokenizerFast"]
