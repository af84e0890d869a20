"""What one training sample brings to a batch besides its caption: latents, and what masks add.

Kept out of the loop so the loop reads as the algorithm. Everything here is a pure
function of the sample, its per-sample rng and the files on disk, which is what makes
caching (VAE latents, mask-file inputs) safe and a resumed run exact.
"""

from __future__ import annotations

import random
from typing import Any, Callable

import torch

from tuitrain.config import Config
from tuitrain.trainer.cache import TensorCache, blank_fields, latent_fields, mask_fields
from tuitrain.trainer.data import Sample, TrainingData, load_mask, load_pixels, load_reference, random_crop_origin
from tuitrain.trainer.families.base import Conditioning, FamilyAdapter, LatentBatch, ModelParts
from tuitrain.trainer.masks import SampleInputs, binarize, latent_coverage, latent_mask, masked_pixels, random_mask


class SampleEncoder:
    def __init__(self, config: Config, parts: ModelParts, adapter: FamilyAdapter, compute_dtype: torch.dtype,
                 model_id: str, cache: TensorCache | None) -> None:
        self.config = config
        self.parts = parts
        self.adapter = adapter
        self.compute_dtype = compute_dtype  # part of cache keys: latents made under another precision differ
        self.model_id = model_id
        self.cache = cache
        self.device = next(parts.vae.parameters()).device

    def check_data(self, data: TrainingData) -> None:
        """Stop before training when the inputs cannot be made: an inpainting model reads every mask file."""
        if self.parts.inpainting:
            data.check_masks()  # masked_loss runs are checked when the data is read

    def collate(self, samples: list[Sample], inputs: list[SampleInputs], conditioning: Conditioning,
                device: torch.device) -> LatentBatch:
        """One batch for the denoiser: stacked latents, the family's per-sample extras (size conditioning)
        and what masks add (the inpainting input), on `device`."""
        latents = torch.stack([x.latents for x in inputs]).to(device)
        size_info = self.adapter.size_info([s.assignment for s in samples])
        inpaint = torch.stack([x.inpaint for x in inputs]).to(device) if inputs[0].inpaint is not None else None
        reference = (torch.stack([x.reference for x in inputs]).to(device) if inputs[0].reference is not None
                     else None)
        return LatentBatch(latents, conditioning, size_info, inpaint, reference)

    def encode(self, sample: Sample, rng: random.Random) -> SampleInputs:
        """A sample's latents, and what masks add: the inpainting input, the loss mask.

        Cached: image latents and whatever depends only on files (mask-file masks, their
        masked-image latents, the blank image's latents). Random masks are drawn anew on
        every visit (from the sample's rng, so a resumed run draws the same ones).
        """
        # The sample's concept's flip / crop_jitter (data.flip / data.crop_jitter unless the concept sets its own).
        flip = sample.flip and rng.random() < 0.5
        origin = random_crop_origin(sample, rng) if sample.crop_jitter else None
        # One draw seeds the random mask: a fixed number of draws, so what is drawn after it stays put.
        mask_rng = random.Random(rng.getrandbits(64)) if self.parts.inpainting else None
        a = sample.assignment
        crop = (origin + (origin[0] + a.bucket[0], origin[1] + a.bucket[1])) if origin else a.scaled_crop
        key = latent_fields(self.model_id, sample.path, sample.file_size, sample.mtime_ns, a.bucket, crop, flip,
                            self.compute_dtype)
        cache = self.cache if origin is None else None
        loaded: dict[str, torch.Tensor] = {}

        def pixels() -> torch.Tensor:
            if "pixels" not in loaded:
                loaded["pixels"] = load_pixels(sample, flip=flip, jitter=origin)
            return loaded["pixels"]

        def file_mask() -> torch.Tensor:
            if "mask" not in loaded:
                loaded["mask"] = load_mask(sample, flip=flip, jitter=origin)
            return loaded["mask"]

        latents = _cached(cache, key, "latents", lambda: self._encode(pixels()))
        size = (latents.shape[-2], latents.shape[-1])
        loss_mask = None
        if self.config.training.masked_loss and sample.mask is not None:
            m = sample.mask
            loss_key = mask_fields(key, "loss-mask", m.path, m.file_size, m.mtime_ns)
            loss_mask = _cached(cache, loss_key, "coverage", lambda: latent_coverage(file_mask(), size))
        inpaint = None
        if mask_rng is not None:
            inpaint = self._inpaint_input(sample, key, cache, mask_rng, size, pixels, file_mask)
        reference = None
        if sample.reference is not None:  # editing models: the reference's latents, fitted as the image is
            r = sample.reference
            ref_key = mask_fields(key, "reference", r.path, r.file_size, r.mtime_ns)
            reference = _cached(cache, ref_key, "latents",
                                lambda: self._encode(load_reference(sample, flip=flip, jitter=origin)))
        return SampleInputs(latents, inpaint, loss_mask, reference)

    def _encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """[3, H, W] pixels in [-1, 1] -> [4, h, w] scaled latents (fp32, on the CPU, as cached)."""
        with torch.no_grad():
            batch = pixels.unsqueeze(0).to(self.device, self.parts.vae.dtype)
            return self.adapter.encode_images(self.parts, batch)[0].float().cpu()

    def _inpaint_input(self, sample: Sample, key: dict[str, Any], cache: TensorCache | None, rng: random.Random,
                       size: tuple[int, int], pixels: Callable[[], torch.Tensor],
                       file_mask: Callable[[], torch.Tensor]) -> torch.Tensor:
        """[mask, masked-image latents] ([5, h, w]) for an inpainting UNet: the sample's mask file, else
        (data.random_mask_probability) a random mask, else the whole image (which teaches text-to-image)."""
        def build(mask: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
            return torch.cat([latent_mask(mask, size), self._encode(masked_pixels(image, mask))])

        bucket = sample.assignment.bucket
        if sample.mask is not None:
            m = sample.mask
            fields = mask_fields(key, "inpaint", m.path, m.file_size, m.mtime_ns)
            return _cached(cache, fields, "inpaint", lambda: build(binarize(file_mask()), pixels()))
        if rng.random() < self.config.data.random_mask_probability:
            return build(random_mask(rng, bucket[0], bucket[1]), pixels())
        # Fully masked: the masked image is all zeros, the same for every image of this size.
        blank = _cached(self.cache, blank_fields(self.model_id, bucket, self.compute_dtype), "latents",
                        lambda: self._encode(torch.zeros(3, bucket[1], bucket[0])))
        return torch.cat([torch.ones(1, *size), blank])


def _cached(cache: TensorCache | None, fields: dict[str, Any], name: str, make: Callable[[], torch.Tensor]) -> torch.Tensor:
    """The tensor cached under `fields` (as entry `name`), made and stored on a miss; no cache: just made."""
    if cache is not None:
        hit = cache.get(fields)
        if hit is not None:
            return hit[name]
    value = make()
    if cache is not None:
        cache.put(fields, {name: value})
    return value


