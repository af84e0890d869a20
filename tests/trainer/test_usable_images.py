"""The trainer's data path on files `tuitrain check` rejects: skipped and said once, never met mid-run.

Driven through TrainingData and load_pixels with a real Config, as the training loop uses them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from tests.dataset import badfiles as bad
from tests.dataset.bounded import GIB, run_bounded
from tests.dataset.conftest import save, textured
from tuitrain.config import parse_config
from tuitrain.dataset.buckets import assign_bucket
from tuitrain.dataspec import config_preflight
from tuitrain.trainer.data import Sample, TrainingData, load_pixels
from tuitrain.trainer.loop import TrainingError


def _config(folder: Path, **data: object):  # type: ignore[no-untyped-def]
    return parse_config({"data": {"resolution": 64, "bucket_step": 16, "concepts": [{"path": str(folder)}], **data}})


def test_the_trainer_skips_exactly_what_check_rejects_and_says_so_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "data"
    for i in range(4):
        save(folder / f"good{i}.png", (64, 64), seed=i)
    bad.truncated(folder / "cut.bmp", "BMP")  # no end marker: the header alone looked fine
    bad.truncated(folder / "cut.tif", "TIFF")
    bad.tiff_decoder_rejects(folder / "deflate.tif")
    bad.corrupt_png_clean_end(folder / "damaged.png")
    bad.gif_fake_trailer(folder / "fake-end.gif")
    bad.apng(folder / "apng-first.png", broken_frame=0)
    bad.apng(folder / "apng-second.png", broken_frame=1)  # only the first frame trains: usable
    bad.bmp_oversize_palette(folder / "palette.bmp")  # ValueError: invalid palette size in load_pixels
    config = _config(folder)

    report = config_preflight(config, tmp_path)
    capsys.readouterr()
    data = TrainingData(config, tmp_path, cache_dir=tmp_path / "trainer-cache")  # its own cache: decided afresh

    rejected = sorted(p.path.name for p in report.unreadable)
    assert rejected == ["apng-first.png", "cut.bmp", "cut.tif", "damaged.png", "deflate.tif", "fake-end.gif",
                        "palette.bmp"]
    assert sorted(s.path.name for s in data.samples) == sorted(p.name for p in report.assignments)
    assert sorted(p.path.name for p in data.skipped) == rejected
    said = capsys.readouterr().err.strip().splitlines()
    assert said == ["warning: skipping 7 files that `tuitrain check` reports as not usable (not decodable, "
                    "unsupported, not a regular file, or a size or shape bucketing cannot take); run `tuitrain "
                    "check` on this run to see which and why"]
    for sample in data.samples:
        w, h = sample.assignment.bucket
        assert load_pixels(sample).shape == (3, h, w)


_STRIPS = """
import json, sys, resource
from pathlib import Path
import torch
torch.set_num_threads(1)
from tuitrain.dataset.buckets import assign_bucket
from tuitrain.dataset.spec import BucketSpec
from tuitrain.trainer.data import Sample, load_pixels
out = {}
for name in sys.argv[1:]:
    path = Path(name)
    from PIL import Image
    with Image.open(path) as image:
        size = image.size
    sample = Sample(0, path, 0, assign_bucket(*size, BucketSpec(resolution=512), path), 0, 0)
    out[path.name] = list(load_pixels(sample, flip=True).shape)
out["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
print(json.dumps(out))
"""


def test_load_pixels_crops_before_it_scales(tmp_path: Path) -> None:
    # Resizing a 1x50,000 strip to cover its 384x640 bucket first wanted ~29 GB; 5000x1 took
    # 3.2 GB and 46 s; 1x20,000,000 raised OverflowError. Only the crop is resampled now.
    # (The pre-flight refuses these shapes; the trainer must still never run away on one.)
    names = [bad.strip_png(tmp_path / "strip.png", 1, 50_000), bad.strip_png(tmp_path / "line.png", 5000, 1),
             bad.strip_png(tmp_path / "thread.png", 1, 20_000_000)]

    out = run_bounded(["-c", _STRIPS, *map(str, names)], timeout=120, memory=3 * GIB)

    assert out.returncode == 0, out.stderr[-2000:]
    shapes = json.loads(out.stdout)
    assert shapes.pop("peak_mib") < 1024
    assert shapes == {"strip.png": [3, 640, 384], "line.png": [3, 384, 640], "thread.png": [3, 640, 384]}


@pytest.mark.parametrize("jitter", [None, (0, 5)])
def test_cropping_first_gives_the_pixels_scaling_first_gave(tmp_path: Path, jitter: tuple[int, int] | None) -> None:
    path = tmp_path / "photo.png"
    textured((300, 200), seed=5).save(path)
    a = assign_bucket(300, 200, _spec(), path)
    assert a.scaled_size == (80, 53) and a.bucket == (80, 48)
    left, top = a.scaled_crop[:2] if jitter is None else jitter
    with Image.open(path) as image:
        reference = image.convert("RGB").resize(a.scaled_size, Image.Resampling.LANCZOS)
    reference = reference.crop((left, top, left + a.bucket[0], top + a.bucket[1]))
    expected = torch.frombuffer(bytearray(reference.tobytes()), dtype=torch.uint8).view(48, 80, 3).permute(2, 0, 1)

    pixels = load_pixels(Sample(0, path, 0, a, 0, 0), jitter=jitter)

    assert (pixels - (expected.float() / 127.5 - 1)).abs().max() <= 4 / 127.5  # within 2 levels of 255


def _spec():  # type: ignore[no-untyped-def]
    from tuitrain.dataset.spec import BucketSpec

    return BucketSpec(resolution=64, step=16)


def test_a_file_that_breaks_after_the_start_fails_naming_itself(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    save(folder / "a.png", (64, 64), seed=1)
    save(folder / "b.png", (64, 64), seed=2)
    data = TrainingData(_config(folder), tmp_path, cache_dir=tmp_path / "cache")
    a, b = sorted(data.samples, key=lambda s: s.path.name)
    (folder / "a.png").write_bytes((folder / "a.png").read_bytes()[:100])
    save(folder / "b.png", (64, 32), seed=2)

    with pytest.raises(TrainingError, match=f"cannot read {a.path}: .*did it change"):
        load_pixels(a)
    assert load_pixels(b).shape == (3, 64, 64)  # re-saved at another size: still its bucket's pixels
