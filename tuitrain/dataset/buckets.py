"""Aspect-ratio buckets: which training size each image gets, and which part of it survives.

Same idea as kohya's and OneTrainer's buckets (about resolution^2 pixels, sides
in multiples of `step`, aspect capped), written from the idea, not their code.
Each image goes to the bucket closest in aspect ratio, is scaled to cover it and
centre-cropped. The crop box is exposed so the TUI can show exactly what trains.
An image whose crop would keep less than 1/CROP_KEEPS_AT_LEAST of its long side
(a 1x50,000 strip) is refused by aspect_problem rather than smeared into a bucket.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tuitrain.dataset.scan import ImageInfo
from tuitrain.dataset.spec import BucketSpec

Size = tuple[int, int]
Box = tuple[int, int, int, int]

# An image may be at most this many times longer (for its width) than the most elongated
# bucket: its centre crop then keeps at least a quarter of it. Past that, what trains is
# a sliver of the picture stretched over a whole bucket.
CROP_KEEPS_AT_LEAST = 4


@dataclass(frozen=True)
class BucketAssignment:
    """How one image becomes a training sample.

    What trains is scaled_crop of the upright image resized to scaled_size (the
    trainer resamples only that region, see trainer.data._fit); crop_box is the same
    region in the upright original's pixels (left, top, right, bottom), for drawing
    on a preview.
    """

    path: Path | None
    original_size: Size
    bucket: Size
    scale: float
    scaled_size: Size
    scaled_crop: Box
    crop_box: Box

    @property
    def upscaled(self) -> bool:
        """True when the image is smaller than its bucket and gets blown up (softer results)."""
        return self.scale > 1.0


def make_buckets(spec: BucketSpec) -> list[Size]:
    """All bucket sizes, sorted: about resolution^2 pixels each, sides multiples of step.

    For each short side we take the longest long side that keeps the area
    within resolution^2, and add both orientations so portrait and landscape
    get mirror-image buckets.
    """
    if not spec.enabled:
        return [(spec.resolution, spec.resolution)]
    area = spec.resolution * spec.resolution
    buckets: set[Size] = set()
    for short in range(spec.step, spec.resolution + 1, spec.step):
        long = (area // short) // spec.step * spec.step
        if long < short or long / short > spec.max_aspect + 1e-9:
            continue
        buckets.add((short, long))
        buckets.add((long, short))
    if not buckets:  # resolution below one step: fall back to the square
        buckets.add((spec.resolution, spec.resolution))
    return sorted(buckets)


def nearest_bucket(width: int, height: int, buckets: Iterable[Size]) -> Size:
    """The bucket closest in aspect ratio (compared as log ratios, so 2:1 and 1:2 are equally far from 1:1).

    Ties go to the larger bucket, then the wider one, so the choice is stable.
    """
    if width < 1 or height < 1:
        raise ValueError(f"an image of {width}x{height} pixels has no aspect ratio")
    aspect = math.log(width / height)
    return min(buckets, key=lambda b: (round(abs(math.log(b[0] / b[1]) - aspect), 12), -b[0] * b[1], -b[0]))


def aspect_limit(spec: BucketSpec) -> float:
    """The most elongated image (long side / short side) that `spec`'s buckets take."""
    return max(max(w, h) / min(w, h) for w, h in make_buckets(spec)) * CROP_KEEPS_AT_LEAST


def aspect_problem(width: int, height: int, spec: BucketSpec) -> str | None:
    """Why an image of this (upright) size is beyond what bucketing allows, or None.

    Part of the one "usable image" rule (dataset.usable): `check` refuses such an image
    naming it, and the trainer skips it, instead of cropping a sliver out of it.
    """
    if width < 1 or height < 1:
        return f"zero-sized image ({width}x{height}): nothing to train on"
    ratio = max(width, height) / min(width, height)
    limit = aspect_limit(spec)
    if ratio <= limit + 1e-9:
        return None
    bucket = nearest_bucket(width, height, make_buckets(spec))
    kept = max(bucket) / min(bucket) / ratio
    return (
        f"aspect ratio {_ratio(ratio)}:1 ({width}x{height}) is beyond what bucketing allows "
        f"(at most {_ratio(limit)}:1): its {bucket[0]}x{bucket[1]} bucket would keep {kept * 100:.2g}% of it; "
        "crop it to a less extreme shape"
    )


def _ratio(value: float) -> str:
    return f"{value:.4g}" if value < 1000 else f"{value:,.0f}"


def fit_to_bucket(width: int, height: int, bucket: Size, path: Path | None = None) -> BucketAssignment:
    """Scale to cover the bucket, then centre-crop the overflow."""
    bucket_w, bucket_h = bucket
    scale = max(bucket_w / width, bucket_h / height)
    scaled_w = max(bucket_w, round(width * scale))
    scaled_h = max(bucket_h, round(height * scale))
    left = (scaled_w - bucket_w) // 2
    top = (scaled_h - bucket_h) // 2
    scaled_crop = (left, top, left + bucket_w, top + bucket_h)
    crop_box = (
        max(0, round(left / scale)),
        max(0, round(top / scale)),
        min(width, round((left + bucket_w) / scale)),
        min(height, round((top + bucket_h) / scale)),
    )
    return BucketAssignment(
        path=path,
        original_size=(width, height),
        bucket=bucket,
        scale=scale,
        scaled_size=(scaled_w, scaled_h),
        scaled_crop=scaled_crop,
        crop_box=crop_box,
    )


def assign_bucket(width: int, height: int, spec: BucketSpec, path: Path | None = None) -> BucketAssignment:
    """Bucket, scale and crop for one upright image size."""
    return fit_to_bucket(width, height, nearest_bucket(width, height, make_buckets(spec)), path)


def assign_buckets(images: Iterable[ImageInfo], spec: BucketSpec) -> list[BucketAssignment]:
    """Bucket, scale and crop for each scanned image, in the order given."""
    buckets = make_buckets(spec)
    return [
        fit_to_bucket(image.width, image.height, nearest_bucket(image.width, image.height, buckets), image.path)
        for image in images
    ]
