"""Masks: random inpainting masks, the inpainting UNet's extra input, and the masked loss.

Conventions are diffusers' inpainting pipelines' (StableDiffusionInpaintPipeline and
the SDXL one), so what a model learns here is what those pipelines feed it:
  - a mask is 1 where the model repaints (white in a mask file), 0 where the image is kept;
  - it is binarised at 0.5, the masked image is the pixels where mask < 0.5 and 0 (mid grey
    in [-1, 1]) elsewhere, VAE-encoded and scaled like any latents;
  - the mask goes to latent size by nearest-neighbour interpolation;
  - the UNet input is cat([noisy latents, mask, masked-image latents], dim=1).
The masked loss reads the same mask files but as loss weights: the fraction of each
latent pixel's area the mask covers, so a soft or thin mask keeps its weight.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw


@dataclass
class SampleInputs:
    """What one sample brings to a batch besides its caption."""

    latents: torch.Tensor  # [4, h, w]
    inpaint: torch.Tensor | None = None  # inpainting models: mask + masked-image latents [5, h, w]
    loss_mask: torch.Tensor | None = None  # masked_loss with a mask file: coverage in [0, 1], [1, h, w]
    reference: torch.Tensor | None = None  # editing models: the reference image's latents [C, h, w]


def binarize(mask: torch.Tensor) -> torch.Tensor:
    """0/1 as diffusers' mask processor makes it (>= 0.5 is 1)."""
    return (mask >= 0.5).to(mask.dtype)


def masked_pixels(pixels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The image the model may see: pixels where the (binary) mask is 0, zero where it repaints."""
    return pixels * (mask < 0.5)


def latent_mask(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A [1, H, W] pixel mask at latent size [1, h, w], nearest-neighbour like the inpainting pipelines."""
    return F.interpolate(mask[None].float(), size=size)[0]


def latent_coverage(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A [1, H, W] pixel mask as the share of each latent pixel it covers (area average), [1, h, w]."""
    return F.interpolate(mask[None].float(), size=size, mode="area")[0]


def random_mask(rng: random.Random, width: int, height: int) -> torch.Tensor:
    """A random inpainting mask [1, height, width] of 0/1: one to three rectangles, ellipses or brush strokes.

    Shapes like those of the reference inpainting training scripts (boxes and blobs
    of 10-70% of a side, LaMa-style strokes). Every draw comes from `rng`, so the same
    seed gives the same mask, which is what makes a resumed run exact.
    """
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    short = min(width, height)
    for _ in range(rng.randint(1, 3)):
        kind = rng.choice(("rectangle", "ellipse", "stroke"))
        if kind == "stroke":
            points = [(rng.uniform(0, width), rng.uniform(0, height)) for _ in range(rng.randint(2, 5))]
            draw.line(points, fill=255, width=max(1, round(short * rng.uniform(0.05, 0.2))), joint="curve")
            continue
        w, h = width * rng.uniform(0.1, 0.7), height * rng.uniform(0.1, 0.7)
        left, top = rng.uniform(0, width - w), rng.uniform(0, height - h)
        box = (left, top, left + w, top + h)
        (draw.rectangle if kind == "rectangle" else draw.ellipse)(box, fill=255)
    data = torch.frombuffer(bytearray(canvas.tobytes()), dtype=torch.uint8).view(1, height, width)
    return (data > 127).float()


def per_sample_loss(
    pred: torch.Tensor, target: torch.Tensor, loss_masks: list[torch.Tensor | None], unmasked_weight: float
) -> torch.Tensor:
    """MSE per sample [B]; a sample with a loss mask weighs each latent pixel by it.

    Weight = unmasked_weight + (1 - unmasked_weight) * coverage, and the weighted sum is
    divided by the sum of the weights: a weighted mean, so a masked sample's loss is on
    the same scale as an unmasked one (an all-white mask gives exactly the plain MSE's
    value) whatever the size of its mask. Samples without a mask keep the plain mean.
    """
    return weighted_per_sample(F.mse_loss(pred.float(), target.float(), reduction="none"), loss_masks, unmasked_weight)


def weighted_per_sample(per: torch.Tensor, loss_masks: list[torch.Tensor | None], unmasked_weight: float) -> torch.Tensor:
    """Elementwise losses [B, C, h, w] to one per sample [B], weighed by the loss masks as per_sample_loss says
    (losses.py passes its other loss types' errors through here)."""
    plain = per.mean(dim=(1, 2, 3))
    if all(m is None for m in loss_masks):
        return plain
    rows = []
    for i, coverage in enumerate(loss_masks):
        if coverage is None:
            rows.append(plain[i])
            continue
        weight = unmasked_weight + (1.0 - unmasked_weight) * coverage.to(per.device, per.dtype)  # [1, h, w]
        total = weight.sum() * per.shape[1]
        # An all-black mask with unmasked_weight 0 weighs nothing: the sample adds no loss.
        rows.append((per[i] * weight).sum() / total.clamp_min(1e-12))
    return torch.stack(rows)
