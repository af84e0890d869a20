"""What the UNet families (SD 1.x, 2.x, SDXL) share: LoRA targets, inpainting input, CLIP encoding, DDPM schedule."""

from __future__ import annotations

from typing import Any

import torch

from tuitrain.trainer.families.base import LatentBatch, ModelParts
from tuitrain.trainer.families.files import INPAINT_CHANNELS

UNET_ATTENTION = ("to_q", "to_k", "to_v", "to_out.0")
UNET_FEED_FORWARD = ("ff.net.0.proj", "ff.net.2", "proj_in", "proj_out")
# kohya's LoCon set (sd-scripts networks/lora.py): the convolutions inside ResnetBlock2D,
# Downsample2D and Upsample2D. Not conv_in / conv_out: kohya's loader silently skips them
# (they sit outside those blocks), so a file with them loses layers there while ComfyUI,
# Forge, A1111 and diffusers apply them; leaving them out keeps every loader identical.
UNET_CONV = ("conv1", "conv2", "conv_shortcut", "downsamplers.0.conv", "upsamplers.0.conv")


def training_scheduler(pipeline: Any, prediction: str) -> tuple[Any, str]:
    """A DDPM scheduler with the base model's noise schedule, and the prediction type to train ("auto": the
    base model's own); built by the DDPM objective's training_scheduler, the one place that makes it."""
    from tuitrain.trainer.objectives.ddpm import training_scheduler as ddpm_scheduler

    config = dict(pipeline.scheduler.config)
    if prediction == "auto":
        prediction = config.get("prediction_type", "epsilon")
    return ddpm_scheduler(config, prediction), prediction


def unet_parts(pipeline: Any, prediction: str, info: Any) -> ModelParts:
    """The components of a UNet family's pipeline: its text encoders and tokenizers in the family's order
    (FamilyFiles.components), the DDPM training schedule, the flavour the prediction type names."""
    from tuitrain.trainer.families import family_files

    scheduler, prediction_type = training_scheduler(pipeline, prediction)
    encoders = family_files(info.name).text_encoder_components
    return ModelParts(
        pipeline=pipeline,
        denoiser=pipeline.unet,
        vae=pipeline.vae,
        text_encoders=[getattr(pipeline, name) for name in encoders],
        tokenizers=[getattr(pipeline, name.replace("text_encoder", "tokenizer")) for name in encoders],
        noise_scheduler=scheduler,
        prediction_type=prediction_type,
        flavour=info.flavour_for_prediction(prediction_type).name,
        inpainting=unet_is_inpainting(pipeline.unet),
    )


def unet_is_inpainting(unet: torch.nn.Module) -> bool:
    """4 input channels: text-to-image; 9: inpainting. Anything else is refused with the reason."""
    from tuitrain.trainer.loading.errors import ModelLoadError

    channels = unet.config.in_channels  # type: ignore[union-attr]
    if channels not in (4, INPAINT_CHANNELS):
        raise ModelLoadError(
            f"model.base: the UNet has {channels} input channels; tuitrain trains text-to-image (4) and "
            f"inpainting ({INPAINT_CHANNELS}) models"
        )
    return channels == INPAINT_CHANNELS


def unet_input(parts: ModelParts, noisy: torch.Tensor, batch: LatentBatch) -> torch.Tensor:
    """The UNet's input: the noisy latents, and for an inpainting UNet its mask and masked-image latents."""
    if not parts.inpainting:
        return noisy
    if batch.inpaint is None:
        raise ValueError("an inpainting model needs each sample's mask and masked-image latents")
    return torch.cat([noisy, batch.inpaint.to(noisy.device, noisy.dtype)], dim=1)


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


def random_text_states(denoiser: torch.nn.Module, batch: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Random CLIP hidden states [B, 77, cross_attention_dim]: a bench batch's text conditioning."""
    dim = denoiser.config.cross_attention_dim  # type: ignore[union-attr]
    return torch.randn(batch, 77, dim, device=device, dtype=dtype)
