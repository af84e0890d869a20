"""Samples of stage C without a decoder: the prior's 16-channel latents drawn as a picture (Stable Cascade's, and
Würstchen v2's, whose pipelines hand out the same EfficientNet-space latents and whose decoder takes the same call).

Stage C makes EfficientNet latents, not pixels; decoding them takes stages B and A (another 1.5B + 20M
parameters), which load only when cascade.decoder names them. Without them a sample is the prior's output itself:
channels 0-2 as RGB (the latents have unit variance: +-2 sigma spans the range), scaled up to the
prompt's size with nearest-neighbour so each latent stays a visible cell. It shows the composition and
whether training moves it, not the image a decoder would make.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

NOTE = ("Stable Cascade samples show stage C's latents (channels 0-2 as colours), not decoded images: set "
        "cascade.decoder to a Stable Cascade decoder (stages B and A) to decode them, or cascade.previewer for rough "
        "previews")
PREVIEWER_NOTE = ("Stable Cascade samples are the previewer's rough images of stage C's latents, not decoded images: "
                  "set cascade.decoder to a Stable Cascade decoder (stages B and A) to decode them")


@dataclass
class PreviewOutput:
    images: list[Any]


def latents_to_images(latents: torch.Tensor, width: int, height: int) -> list[Any]:
    """[B, 16, h, w] prior latents -> PIL images of width x height."""
    from PIL import Image

    rgb = (latents[:, :3].float() / 4 + 0.5).clamp(0, 1)
    rgb = torch.nn.functional.interpolate(rgb, size=(height, width), mode="nearest")
    arrays = (rgb * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return [Image.fromarray(a) for a in arrays]


DECODER_STEPS = 10
LORA_CALLS = ("load_lora_weights", "set_adapters", "enable_lora", "disable_lora", "unload_lora_weights")  # StableCascadeDecoderPipeline's default, and its guidance 0 (the decoder's usual use)


def previewer_images(previewer: Any, latents: torch.Tensor, width: int, height: int) -> list[Any]:
    """[B, 16, h, w] prior latents -> PIL images through the released previewer (RGB in [0, 1], 8x the sides),
    resized to width x height."""
    from PIL import Image

    parameter = next(previewer.parameters())
    rgb = previewer(latents.to(parameter.device, parameter.dtype)).float().clamp(0, 1)
    rgb = torch.nn.functional.interpolate(rgb, size=(height, width), mode="bilinear", antialias=True).clamp(0, 1)
    arrays = (rgb * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return [Image.fromarray(a) for a in arrays]


class PriorPreviewPipeline:
    """The prior pipeline behind the interface sampling.py calls: `pipe(...).images`, `scheduler`,
    `set_progress_bar_config`. With `decoder` (a StableCascadeDecoderPipeline: stages B and A) the prior's
    latents are decoded into images, as StableCascadeCombinedPipeline chains the two."""

    def __init__(self, prior_pipeline: Any, decoder: Any | None = None, previewer: Any | None = None) -> None:
        self.prior_pipeline = prior_pipeline
        self.decoder = decoder
        self.previewer = previewer  # without a decoder: the released previewer net, else the latents' channels

    def __getattr__(self, name: str) -> Any:
        """The prior pipeline's own LoRA calls where it has them (Würstchen's WuerstchenPriorPipeline; Stable
        Cascade's has none), so `tuitrain sample` loads a file as a diffusers user does."""
        if name in LORA_CALLS and "prior_pipeline" in self.__dict__:
            return getattr(self.prior_pipeline, name)
        raise AttributeError(name)

    @property
    def scheduler(self) -> Any:
        return self.prior_pipeline.scheduler

    @scheduler.setter
    def scheduler(self, value: Any) -> None:
        self.prior_pipeline.scheduler = value

    def set_progress_bar_config(self, **kwargs: Any) -> None:
        self.prior_pipeline.set_progress_bar_config(**kwargs)
        if self.decoder is not None:
            self.decoder.set_progress_bar_config(**kwargs)

    def __call__(self, *, width: int, height: int, **kwargs: Any) -> PreviewOutput:
        out = self.prior_pipeline(width=width, height=height, output_type="pt", **kwargs)
        if self.decoder is None and self.previewer is not None:
            return PreviewOutput(previewer_images(self.previewer, out.image_embeddings, width, height))
        if self.decoder is None:
            return PreviewOutput(latents_to_images(out.image_embeddings, width, height))
        decoder_dtype = next(self.decoder.decoder.parameters()).dtype
        images = self.decoder(image_embeddings=out.image_embeddings.to(decoder_dtype), prompt=kwargs["prompt"],
                              negative_prompt=kwargs.get("negative_prompt"), num_inference_steps=DECODER_STEPS,
                              guidance_scale=0.0, generator=kwargs.get("generator"), output_type="pil").images
        return PreviewOutput(images)
