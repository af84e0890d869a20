"""Trainer-side data order, pixels, caches, optimizers and schedules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from PIL import Image

from tuitrain.config import parse_config
from tuitrain.config.schema import OptimizerSection, TrainingSection
from tuitrain.trainer.cache import TensorCache, latent_fields, model_identity, text_fields
from tuitrain.trainer.data import TrainingData, epoch_batches, load_pixels, steps_per_epoch
from tuitrain.trainer.optim import build_optimizer, build_scheduler


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "3_fox"
    folder.mkdir()
    for i in range(5):
        Image.new("RGB", (96, 64), (40 * i, 100, 200)).save(folder / f"wide{i}.png")
        (folder / f"wide{i}.txt").write_text(f"fox {i}, red, forest")
    for i in range(2):
        Image.new("RGB", (64, 96), (10, 10, 10)).save(folder / f"tall{i}.png")
        (folder / f"tall{i}.txt").write_text("tall fox")
    return folder


def _data(data_dir: Path, tmp_path: Path, **data: object) -> TrainingData:
    config = parse_config({"data": {"resolution": 64, "bucket_step": 32, "concepts": [{"path": str(data_dir)}], **data}})
    return TrainingData(config, tmp_path, cache_dir=tmp_path / "scancache")


def test_batches_are_same_bucket_deterministic_and_drop_remainders(data_dir: Path, tmp_path: Path) -> None:
    data = _data(data_dir, tmp_path)
    assert len(data.samples) == 7 and set(data.repeats) == {3}  # "3_fox": 3 repeats
    batches = epoch_batches(data.samples, data.repeats, 2, seed=1, epoch=0)
    # 15 wide samples -> 7 batches, 6 tall -> 3 batches
    assert len(batches) == 10
    for batch in batches:
        assert len({data.samples[i].assignment.bucket for i in batch}) == 1
    assert batches == epoch_batches(data.samples, data.repeats, 2, seed=1, epoch=0)
    assert batches != epoch_batches(data.samples, data.repeats, 2, seed=1, epoch=1)
    assert steps_per_epoch(data.samples, data.repeats, 2, accumulation=2) == 5


def test_pixels_are_the_bucket_crop(data_dir: Path, tmp_path: Path) -> None:
    data = _data(data_dir, tmp_path)
    sample = next(s for s in data.samples if s.path.name == "wide4.png")
    pixels = load_pixels(sample)
    w, h = sample.assignment.bucket
    assert pixels.shape == (3, h, w)
    assert pixels.min() >= -1 and pixels.max() <= 1
    expected = torch.tensor([160, 100, 200]) / 127.5 - 1
    torch.testing.assert_close(pixels[:, h // 2, w // 2], expected, atol=1 / 127.5, rtol=0)
    # flip mirrors the image
    im = Image.new("RGB", (64, 64))
    im.paste((255, 0, 0), (0, 0, 32, 64))
    im.save(data_dir / "half.png")
    data = _data(data_dir, tmp_path)
    half = next(s for s in data.samples if s.path.name == "half.png")
    assert load_pixels(half)[0, 10, 5] > 0.9 and load_pixels(half, flip=True)[0, 10, 5] < -0.9


def test_captions_with_shuffle_keep_the_first_tag(data_dir: Path, tmp_path: Path) -> None:
    import random

    data = _data(data_dir, tmp_path, shuffle_tags=True, keep_tags=1)
    sample = next(s for s in data.samples if s.path.name == "wide1.png")
    seen = {data.caption(sample, random.Random(i)) for i in range(30)}
    assert all(c.startswith("fox 1") for c in seen) and len(seen) == 2


def test_cache_keys_change_with_every_input(tmp_path: Path) -> None:
    cache = TensorCache(tmp_path, "latents")
    base = dict(model_id="m1", path=Path("/a.png"), file_size=10, mtime_ns=5, bucket=(64, 64), crop=(0, 0, 64, 64),
                flip=False, dtype=torch.float32)
    cache.put(latent_fields(**base), {"latents": torch.ones(4, 8, 8)})
    assert cache.get(latent_fields(**base))["latents"].sum() == 256
    for change in (dict(model_id="m2"), dict(file_size=11), dict(mtime_ns=6), dict(bucket=(64, 32)),
                   dict(crop=(1, 0, 65, 64)), dict(flip=True), dict(dtype=torch.bfloat16)):
        assert cache.get(latent_fields(**{**base, **change})) is None, change
    text = TensorCache(tmp_path, "text")
    text.put(text_fields("m1", "a fox", 0, torch.float32), {"hidden": torch.zeros(2)})
    assert text.get(text_fields("m1", "a fox", 0, torch.float32)) is not None
    assert text.get(text_fields("m1", "a fox ", 0, torch.float32)) is None
    assert text.get(text_fields("m1", "a fox", 2, torch.float32)) is None


def test_damaged_cache_entry_is_remade_not_trusted(tmp_path: Path) -> None:
    cache = TensorCache(tmp_path, "latents")
    fields = {"x": 1}
    cache.put(fields, {"t": torch.ones(3)})
    (entry,) = list((tmp_path / "latents").rglob("*.safetensors"))
    entry.write_bytes(entry.read_bytes()[:20])
    assert cache.get(fields)["t"].sum() == 3  # this process still holds what it wrote
    later = TensorCache(tmp_path, "latents")  # the next run reads the disk
    assert later.get(fields) is None and not entry.exists()


def test_memory_layer_respects_its_budget(tmp_path: Path) -> None:
    cache = TensorCache(tmp_path, "latents", memory_budget=100)
    cache.put({"a": 1}, {"t": torch.ones(20)})  # 80 bytes: kept
    cache.put({"b": 1}, {"t": torch.ones(20)})  # would exceed 100: disk only
    assert cache._memory_bytes == 80 and len(cache._memory) == 1
    assert cache.get({"b": 1})["t"].sum() == 20  # still found, on disk


def test_model_identity_follows_the_weights(tmp_path: Path) -> None:
    model = tmp_path / "m.safetensors"
    model.write_bytes(b"1234")
    a = model_identity(str(model), "", "", "sd15", tmp_path)
    assert a == model_identity("m.safetensors", "", "", "sd15", tmp_path)  # relative to the config
    model.write_bytes(b"12345")
    assert model_identity(str(model), "", "", "sd15", tmp_path) != a
    os.utime(model, ns=(1, 1))
    assert model_identity(str(model), "", "", "sd15", tmp_path) != a
    assert model_identity(str(model), "", "", "sdxl", tmp_path) != model_identity(str(model), "", "", "sd15", tmp_path)


SCHEDULERS = ["constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts"]


@pytest.mark.parametrize("name", ["adamw", "prodigy", "adafactor"])
@pytest.mark.parametrize("schedule", SCHEDULERS)
def test_optimizers_and_schedules_take_steps(name: str, schedule: str) -> None:
    torch.manual_seed(0)
    layer = torch.nn.Linear(4, 1)
    x, y = torch.randn(64, 4), torch.randn(64, 1)
    opt = build_optimizer([{"params": list(layer.parameters())}], OptimizerSection(name=name),
                          1.0 if name == "prodigy" else 1e-2, torch.device("cpu"))
    training = TrainingSection(lr_scheduler=schedule, lr_warmup_steps=2)
    sched = build_scheduler(opt, training, total_steps=20)
    first = torch.nn.functional.mse_loss(layer(x), y).item()
    lrs = []
    for _ in range(20):
        loss = torch.nn.functional.mse_loss(layer(x), y)
        loss.backward()
        opt.step()
        sched.step()
        opt.zero_grad()
        lrs.append(sched.get_last_lr()[0])
    assert torch.nn.functional.mse_loss(layer(x), y).item() < first
    if schedule == "constant":
        assert len(set(lrs)) == 1
    else:
        assert len(set(lrs)) > 1


def test_text_encoder_gets_its_own_learning_rate() -> None:
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = build_optimizer([{"params": [a]}, {"params": [b], "lr": 5e-5}], OptimizerSection(), 1e-4, torch.device("cpu"))
    assert [g["lr"] for g in opt.param_groups] == [1e-4, 5e-5]
