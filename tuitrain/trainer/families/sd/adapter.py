"""Stable Diffusion 1.x and 2.x: one CLIP text encoder, epsilon or v-prediction."""

from __future__ import annotations

from typing import Any

import torch

from tuitrain.families import FAMILIES
from tuitrain.trainer.families.base import Conditioning, FamilyAdapter, LatentBatch, ModelParts
from tuitrain.trainer.families.sd.unet import (
    UNET_ATTENTION,
    UNET_CONV,
    UNET_FEED_FORWARD,
    clip_hidden_states,
    random_text_states,
    tokenize,
    unet_input,
    unet_parts,
)
from tuitrain.trainer.families.text_encoders import CLIP_ATTENTION_AND_MLP


class StableDiffusionAdapter(FamilyAdapter):
    attention_modules = UNET_ATTENTION
    feed_forward_modules = UNET_FEED_FORWARD
    conv_modules = UNET_CONV
    text_encoder_modules = CLIP_ATTENTION_AND_MLP

    def __init__(self, name: str) -> None:
        self.info = FAMILIES[name]

    def parts(self, pipeline: Any, prediction: str) -> ModelParts:
        return unet_parts(pipeline, prediction, self.info)

    def encode_text(self, parts: ModelParts, captions: list[str], clip_skip: int = 0) -> Conditioning:
        encoder = parts.text_encoders[0]
        ids = tokenize(parts.tokenizers[0], captions, encoder.device)
        return {"hidden": clip_hidden_states(encoder, ids, clip_skip)}

    def predict(self, parts: ModelParts, noisy: torch.Tensor, timesteps: torch.Tensor, batch: LatentBatch) -> torch.Tensor:
        hidden = batch.conditioning["hidden"].to(noisy.dtype)
        return parts.denoiser(unet_input(parts, noisy, batch), timesteps, encoder_hidden_states=hidden, return_dict=False)[0]

    def random_batch(self, denoiser: torch.nn.Module, batch: int, resolution: int, device: torch.device,
                     dtype: torch.dtype) -> LatentBatch:
        side = resolution // 8
        latents = torch.randn(batch, 4, side, side, device=device)
        return LatentBatch(latents, {"hidden": random_text_states(denoiser, batch, device, dtype)})


def make_adapter(family: str) -> FamilyAdapter:
    return StableDiffusionAdapter(family)
