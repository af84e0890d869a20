"""Stable Diffusion 1.x and 2.x: one CLIP text encoder, epsilon or v-prediction."""

from __future__ import annotations

from typing import Any

import torch

from tuitrain.families import FAMILIES
from tuitrain.trainer.families.base import (
    Conditioning,
    FamilyAdapter,
    LatentBatch,
    ModelParts,
    denoiser_input,
    unet_is_inpainting,
)

UNET_ATTENTION = ("to_q", "to_k", "to_v", "to_out.0")
UNET_FEED_FORWARD = ("ff.net.0.proj", "ff.net.2", "proj_in", "proj_out")
# kohya's LoCon set (sd-scripts networks/lora.py): the convolutions inside ResnetBlock2D,
# Downsample2D and Upsample2D. Not conv_in / conv_out: kohya's loader silently skips them
# (they sit outside those blocks), so a file with them loses layers there while ComfyUI,
# Forge, A1111 and diffusers apply them; leaving them out keeps every loader identical.
UNET_CONV = ("conv1", "conv2", "conv_shortcut", "downsamplers.0.conv", "upsamplers.0.conv")
CLIP_ATTENTION_AND_MLP = ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")


def training_scheduler(pipeline: Any, prediction: str) -> tuple[Any, str]:
    """A DDPM scheduler with the base model's noise schedule, and the prediction type to train."""
    from diffusers import DDPMScheduler

    config = dict(pipeline.scheduler.config)
    if prediction == "auto":
        prediction = config.get("prediction_type", "epsilon")
    config["prediction_type"] = prediction
    return DDPMScheduler.from_config(config), prediction


def clip_hidden_states(encoder: torch.nn.Module, ids: torch.Tensor, clip_skip: int) -> torch.Tensor:
    """A1111's clip skip: 1 (or 0) is the last layer; N uses the Nth from last, then the final norm."""
    if clip_skip <= 1:
        return encoder(ids)[0]
    out = encoder(ids, output_hidden_states=True)
    hidden = out.hidden_states[-clip_skip]
    # transformers 5 flattened CLIPTextModel (no .text_model); 4.x nests it.
    return getattr(encoder, "text_model", encoder).final_layer_norm(hidden)


def tokenize(tokenizer: Any, captions: list[str], device: torch.device) -> torch.Tensor:
    return tokenizer(
        captions, padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt"
    ).input_ids.to(device)


class StableDiffusionAdapter(FamilyAdapter):
    attention_modules = UNET_ATTENTION
    feed_forward_modules = UNET_FEED_FORWARD
    conv_modules = UNET_CONV
    text_encoder_modules = CLIP_ATTENTION_AND_MLP

    def __init__(self, name: str) -> None:
        self.info = FAMILIES[name]

    def parts(self, pipeline: Any, prediction: str) -> ModelParts:
        scheduler, prediction_type = training_scheduler(pipeline, prediction)
        return ModelParts(
            pipeline=pipeline,
            denoiser=pipeline.unet,
            vae=pipeline.vae,
            text_encoders=[pipeline.text_encoder],
            tokenizers=[pipeline.tokenizer],
            noise_scheduler=scheduler,
            prediction_type=prediction_type,
            inpainting=unet_is_inpainting(pipeline.unet),
        )

    def encode_text(self, parts: ModelParts, captions: list[str], clip_skip: int = 0) -> Conditioning:
        encoder = parts.text_encoders[0]
        ids = tokenize(parts.tokenizers[0], captions, encoder.device)
        return {"hidden": clip_hidden_states(encoder, ids, clip_skip)}

    def predict(self, parts: ModelParts, noisy: torch.Tensor, timesteps: torch.Tensor, batch: LatentBatch) -> torch.Tensor:
        hidden = batch.conditioning["hidden"].to(noisy.dtype)
        model_input = denoiser_input(parts, noisy, batch)
        return parts.denoiser(model_input, timesteps, encoder_hidden_states=hidden, return_dict=False)[0]
