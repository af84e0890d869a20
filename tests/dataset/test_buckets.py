from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from tuitrain.dataset import BucketSpec, ConceptSpec, assign_bucket, assign_buckets, make_buckets, scan_concept

from .conftest import save, textured


def test_buckets_at_512() -> None:
    assert make_buckets(BucketSpec(resolution=512)) == [(384, 640), (448, 576), (512, 512), (576, 448), (640, 384)]


def test_buckets_at_1024_match_the_usual_sdxl_sizes() -> None:
    buckets = make_buckets(BucketSpec(resolution=1024))
    assert {(1024, 1024), (1152, 896), (1216, 832), (1344, 768), (768, 1344)} <= set(buckets)
    assert (1536, 640) not in buckets  # 2.4:1 is past max_aspect 2


@pytest.mark.parametrize(
    "resolution, step, max_aspect", [(512, 64, 2.0), (768, 64, 3.0), (1024, 32, 1.5), (640, 128, 4.0)]
)
def test_bucket_invariants(resolution: int, step: int, max_aspect: float) -> None:
    buckets = make_buckets(BucketSpec(resolution=resolution, step=step, max_aspect=max_aspect))

    assert (resolution, resolution) in buckets
    for width, height in buckets:
        assert width % step == 0 and height % step == 0
        assert width * height <= resolution * resolution
        assert max(width, height) / min(width, height) <= max_aspect
        assert (height, width) in buckets  # portrait and landscape mirror each other
        assert width * height > (resolution - step) * resolution  # close to the full area


def test_disabled_bucketing_is_one_square() -> None:
    assert make_buckets(BucketSpec(resolution=768, enabled=False)) == [(768, 768)]
    assignment = assign_bucket(1000, 500, BucketSpec(resolution=768, enabled=False))
    assert assignment.bucket == (768, 768)
    assert assignment.crop_box == (250, 0, 750, 500)  # centre square


def test_landscape_photo_numbers() -> None:
    a = assign_bucket(1024, 768, BucketSpec(resolution=512))

    assert a.bucket == (576, 448)  # 1.29 is the closest ratio to 1.33
    assert a.scale == pytest.approx(448 / 768)
    assert a.scaled_size == (597, 448)
    assert a.scaled_crop == (10, 0, 586, 448)
    assert a.crop_box == (17, 0, 1005, 768)
    assert not a.upscaled


def test_portrait_and_square_numbers() -> None:
    portrait = assign_bucket(3000, 4500, BucketSpec(resolution=512))
    square = assign_bucket(300, 300, BucketSpec(resolution=512))

    assert portrait.bucket == (384, 640)  # 0.6 vs 0.667 of the image
    assert portrait.scaled_size == (427, 640)  # scaled to cover the bucket, not to fit inside it
    assert portrait.scaled_crop == (21, 0, 405, 640)
    assert portrait.crop_box == (148, 0, 2848, 4500)  # the trainer's integer crop, in original pixels
    assert square.bucket == (512, 512) and square.upscaled
    assert square.crop_box == (0, 0, 300, 300)


def test_extreme_aspect_goes_to_the_most_extreme_bucket() -> None:
    panorama = assign_bucket(5000, 500, BucketSpec(resolution=512, max_aspect=2.0))
    assert panorama.bucket == (640, 384)
    assert panorama.crop_box[1] == 0 and panorama.crop_box[3] == 500


def test_exact_fit_has_no_crop() -> None:
    a = assign_bucket(1152, 896, BucketSpec(resolution=1024))
    assert a.bucket == (1152, 896) and a.scale == 1.0 and a.crop_box == (0, 0, 1152, 896)


def test_crop_box_shows_what_the_trainer_sees() -> None:
    # Resize-then-crop (the trainer) and crop-box-then-resize (the TUI) give the same picture.
    image = textured((900, 500), 4)
    a = assign_bucket(*image.size, BucketSpec(resolution=256))

    trained = image.resize(a.scaled_size, Image.Resampling.BILINEAR).crop(a.scaled_crop)
    shown = image.crop(a.crop_box).resize(a.bucket, Image.Resampling.BILINEAR)

    assert trained.size == shown.size == a.bucket
    difference = sum(abs(x - y) for x, y in zip(trained.tobytes(), shown.tobytes())) / len(trained.tobytes())
    assert difference < 3


def test_assign_buckets_uses_upright_sizes(tmp_path: Path, cache_dir: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    save(tmp_path / "rotated.jpg", (1200, 800), exif=exif)  # stored landscape, shown portrait
    save(tmp_path / "wide.png", (1200, 800))

    scan = scan_concept(ConceptSpec(tmp_path), cache_dir=cache_dir)
    assignments = assign_buckets(scan.images, BucketSpec(resolution=512))

    assert [(a.path.name, a.bucket) for a in assignments] == [("rotated.jpg", (384, 640)), ("wide.png", (640, 384))]
