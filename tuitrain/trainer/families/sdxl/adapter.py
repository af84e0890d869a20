"""Stable Diffusion XL: two text encoders, pooled embedding, size and crop conditioning."""

from __future__ import annotations

from typing import Any

import torch

from tuitrain.dataset.buckets import BucketAssignment
from tuitrain.families import FAMILIES
from tuitrain.trainer.families.base import Conditioning, FamilyAdapter, LatentBatch, ModelParts
from tuitrain.trainer.families.sd.unet import (
    UNET_ATTENTION,
    UNET_CONV,
    UNET_FEED_FORWARD,
    random_text_states,
    tokenize,
    unet_input,
    unet_parts,
)
from tuitrain.trainer.families.text_encoders import CLIP_ATTENTION_AND_MLP


class StableDiffusionXLAdapter(FamilyAdapter):
    info = FAMILIES["sdxl"]
    attention_modules = UNET_ATTENTION
    feed_forward_modules = UNET_FEED_FORWARD
    conv_modules = UNET_CONV
    text_encoder_modules = CLIP_ATTENTION_AND_MLP

    def parts(self, pipeline: Any, prediction: str) -> ModelParts:
        return unet_parts(pipeline, prediction, self.info)

    def encode_text(self, parts: ModelParts, captions: list[str], clip_skip: int = 0) -> Conditioning:
        # SDXL conditions on the penultimate layer of both encoders (no final norm), as
        # the reference pipeline does; clip_skip moves further back from there.
        layer = -2 - max(0, clip_skip - 1)
        hidden_states = []
        pooled = None
        for encoder, tokenizer in zip(parts.text_encoders, parts.tokenizers):
            ids = tokenize(tokenizer, captions, encoder.device)
            out = encoder(ids, output_hidden_states=True)
            hidden_states.append(out.hidden_states[layer])
            pooled = out[0]  # text_embeds of the projection model (the second encoder)
        assert pooled is not None
        return {"hidden": torch.cat(hidden_states, dim=-1), "pooled": pooled}

    def size_info(self, assignments: list[BucketAssignment]) -> torch.Tensor:
        return torch.tensor([size_conditioning(a.original_size, a.scaled_crop, a.bucket) for a in assignments])

    def predict(self, parts: ModelParts, noisy: torch.Tensor, timesteps: torch.Tensor, batch: LatentBatch) -> torch.Tensor:
        if batch.size_info is None:
            raise ValueError("SDXL needs the size/crop conditioning of each sample")
        cond = batch.conditioning
        added = {"text_embeds": cond["pooled"].to(noisy.dtype), "time_ids": batch.size_info.to(noisy.device, noisy.dtype)}
        return parts.denoiser(
            unet_input(parts, noisy, batch), timesteps, encoder_hidden_states=cond["hidden"].to(noisy.dtype),
            added_cond_kwargs=added, return_dict=False,
        )[0]

    def random_batch(self, denoiser: torch.nn.Module, batch: int, resolution: int, device: torch.device,
                     dtype: torch.dtype) -> LatentBatch:
        config = denoiser.config  # type: ignore[union-attr]
        pooled_dim = config.projection_class_embeddings_input_dim - 6 * config.addition_time_embed_dim
        side = resolution // 8
        conditioning = {"hidden": random_text_states(denoiser, batch, device, dtype),
                        "pooled": torch.randn(batch, pooled_dim, device=device, dtype=dtype)}
        size = torch.tensor([[resolution, resolution, 0, 0, resolution, resolution]] * batch, device=device)
        return LatentBatch(torch.randn(batch, 4, side, side, device=device), conditioning, size)


def size_conditioning(
    original_size: tuple[int, int], scaled_crop: tuple[int, int, int, int], bucket: tuple[int, int]
) -> list[int]:
    """SDXL's micro-conditioning from the bucketing: (orig_h, orig_w, crop_top, crop_left, target_h, target_w).

    Sizes are (width, height) as the dataset engine gives them; the crop's top-left is
    in the resized image, as in the SDXL paper and the reference training scripts.
    """
    (orig_w, orig_h), (left, top, _, _), (bucket_w, bucket_h) = original_size, scaled_crop, bucket
    return [orig_h, orig_w, top, left, bucket_h, bucket_w]


def make_adapter(family: str) -> FamilyAdapter:
    return StableDiffusionXLAdapter()
