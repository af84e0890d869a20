"""Per-concept settings and regularisation images in the trainer (issue 22): each one changes what trains."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest
import torch
from PIL import Image

from tests.trainer.conftest import make_dataset
from tests.trainer.harness import events, train_config, trainer_for
from tuitrain.config import parse_config
from tuitrain.dataspec import config_preflight
from tuitrain.trainer.data import TrainingData, epoch_batches


def _data(*concepts: dict, **data: object) -> dict:
    return {"resolution": 64, "concepts": list(concepts), **data}


def _training_data(tmp_path: Path, data: dict, **training: object) -> TrainingData:
    table = {"model": {"family": "sd15", "base": "unused"}, "data": data,
             "training": {"batch_size": 1, "seed": 5, **training}}
    return TrainingData(parse_config(table), tmp_path, cache_dir=tmp_path / "scan-cache")


def _concept_counts(data: TrainingData, epoch: int, batch_size: int = 1, seed: int = 5) -> Counter[int]:
    batches = epoch_batches(data.samples, data.repeats, batch_size, seed, epoch)
    return Counter(data.samples[i].concept for batch in batches for i in batch)


def test_a_concepts_loss_weight_scales_its_samples_loss(tiny_model, tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "d", count=2)
    losses = {}
    for weight in (1.0, 0.25, 0.0):
        with trainer_for(tmp_path, tiny_model("sd15"), data, name=f"w{weight}",
                         data=_data({"path": str(data), "loss_weight": weight})) as trainer:
            loss = trainer.batch_loss([0, 1], 0, 0)
            loss.backward()
            grads = [p.grad for p in trainer.method.trainable_parameters() if p.grad is not None]
            losses[weight] = (loss.item(), sum(float(g.abs().sum()) for g in grads))
    assert losses[1.0][0] > 0
    assert losses[0.25][0] == pytest.approx(losses[1.0][0] * 0.25, rel=1e-5)
    assert losses[0.25][1] == pytest.approx(losses[1.0][1] * 0.25, rel=1e-4)  # and so do the gradients
    assert losses[0.0] == (0.0, 0.0)


def test_regularisation_images_are_balanced_to_the_train_samples_every_epoch(tmp_path: Path) -> None:
    train = make_dataset(tmp_path / "train", count=4)
    reg = make_dataset(tmp_path / "1_reg", count=5, colour=(20, 200, 40))
    data = _training_data(tmp_path, _data({"path": str(train), "repeats": 3},
                                          {"path": str(reg), "role": "regularisation"}))
    per_image: dict[int, list[int]] = {}
    for epoch in range(6):
        assert _concept_counts(data, epoch) == {0: 12, 1: 12}  # kohya: reg samples = train images x repeats
        batches = epoch_batches(data.samples, data.repeats, 1, 5, epoch)
        seen = Counter(i for batch in batches for i in batch if data.samples[i].concept == 1)
        for index, count in seen.items():
            per_image.setdefault(index, []).append(count)
    # 12 over 5 images: each image 2 or 3 times an epoch, and which get the third visit changes
    assert {c for counts in per_image.values() for c in counts} == {2, 3}
    assert all(len(set(counts)) == 2 for counts in per_image.values())


def test_samples_per_epoch_fixes_a_concepts_samples(tmp_path: Path) -> None:
    few = make_dataset(tmp_path / "few", count=3)
    many = make_dataset(tmp_path / "10_many", count=6, colour=(0, 0, 200))
    data = _training_data(tmp_path, _data({"path": str(few), "samples_per_epoch": 7}, {"path": str(many)}))
    for epoch in range(3):
        assert _concept_counts(data, epoch) == {0: 7, 1: 60}


def test_caption_dropout_and_enabled_per_concept(tmp_path: Path) -> None:
    dropped = make_dataset(tmp_path / "dropped", count=2)
    kept = make_dataset(tmp_path / "kept", count=2)
    off = make_dataset(tmp_path / "off", count=3)
    data = _training_data(tmp_path, _data({"path": str(dropped), "caption_dropout": 1.0}, {"path": str(kept)},
                                          {"path": str(off), "enabled": False}))
    assert {s.path.parent.name for s in data.samples} == {"dropped", "kept"}
    captions = {name: {data.caption(s, random.Random(n)) for s in data.samples if s.path.parent.name == name
                       for n in range(20)} for name in ("dropped", "kept")}
    assert captions == {"dropped": {""}, "kept": {"a red square with a blue mark"}}
    assert data.any_caption_dropout  # a dropped caption is no text-cache hit

    # and the other way round: [data] drops every caption, a concept keeps its own
    data = _training_data(tmp_path, _data({"path": str(kept), "caption_dropout": 0.0}, {"path": str(dropped)},
                                          caption_dropout=1.0))
    by_concept = {s.concept: data.caption(s, random.Random(1)) for s in data.samples}
    assert by_concept == {0: "a red square with a blue mark", 1: ""}


def _wide(folder: Path, count: int) -> Path:
    """192x128 images with a mark on the left: a 128x128 centre crop can move, a flip shows."""
    folder.mkdir(parents=True)
    for i in range(count):
        image = Image.new("RGB", (192, 128), (200, 30, 30))
        image.paste((0, 0, 250), (40 + i, 8, 70, 40))  # inside the centre crop (x 32-160), off its middle
        image.save(folder / f"{i}.png")
        (folder / f"{i}.txt").write_text("a mark")
    return folder


def test_flip_crop_jitter_and_resolution_per_concept(tiny_model, tmp_path: Path) -> None:
    flipped, jittered, plain, small = (_wide(tmp_path / n, 1) for n in ("flipped", "jittered", "plain", "small"))
    concepts = ({"path": str(flipped), "flip": True}, {"path": str(jittered), "crop_jitter": True},
                {"path": str(plain)}, {"path": str(small), "resolution": 64})
    with trainer_for(tmp_path, tiny_model("sd15"), tmp_path, data=_data(*concepts, resolution=128, bucketing=False, flip=False,
                                                                        crop_jitter=False)) as trainer:
        variants = {}
        for sample in trainer.data.samples:
            latents = [trainer.inputs.encode(sample, random.Random(n)).latents for n in range(8)]
            variants[sample.path.parent.name] = len({tuple(x.flatten().tolist()) for x in latents})
            if sample.path.parent.name == "flipped":  # a flip is a mirror of the unflipped image, not another crop
                assert any(not torch.equal(latents[0], x) for x in latents)
        assert variants == {"flipped": 2, "jittered": variants["jittered"], "plain": 1, "small": 1}
        assert variants["jittered"] > 2
        sizes = {s.path.parent.name: s.assignment.bucket for s in trainer.data.samples}
        assert sizes == {"flipped": (128, 128), "jittered": (128, 128), "plain": (128, 128), "small": (64, 64)}
        small_sample = next(s for s in trainer.data.samples if s.path.parent.name == "small")
        plain_sample = next(s for s in trainer.data.samples if s.path.parent.name == "plain")
        small_latents = trainer.prepare(0, 0, [small_sample.index]).latents.latents
        plain_latents = trainer.prepare(0, 0, [plain_sample.index]).latents.latents
        assert small_latents.shape[-1] * 2 == plain_latents.shape[-1]


def test_a_run_with_regularisation_images_trains_the_steps_check_counted(tiny_model, tmp_path: Path) -> None:
    train = make_dataset(tmp_path / "2_train", count=4)
    reg = make_dataset(tmp_path / "1_reg", count=3, colour=(20, 200, 40))
    data = _data({"path": str(train)}, {"path": str(reg), "role": "regularisation", "loss_weight": 0.5})
    run, code = train_config(tmp_path, tiny_model("sd15"), train, data=data,
                             training={"epochs": 1, "batch_size": 2, "learning_rate": 1e-3, "seed": 3})
    assert code == 0
    started = events(run, "started")[0]
    config = parse_config({"model": {"family": "sd15", "base": "x"}, "data": data, "training": {"batch_size": 2}})
    report = config_preflight(config, tmp_path, full_check=False, cache_dir=tmp_path / "c")
    assert started["steps_per_epoch"] == report.steps_per_epoch == 8  # 8 train + 8 reg samples, batches of 2
    assert len(events(run, "step")) == 8
    assert events(run, "finished")[-1]["status"] == "completed"


def test_class_images_are_drawn_once_by_the_base_model_and_counted_by_check(tiny_model, tmp_path: Path) -> None:
    train = make_dataset(tmp_path / "2_train", count=4)
    reg = tmp_path / "class"  # not there yet: the trainer makes it
    data = _data({"path": str(train)}, {"path": str(reg), "role": "regularisation", "caption": "instance",
                                         "instance_prompt": "a red square", "class_images": 3})
    config = parse_config({"model": {"family": "sd15", "base": "x"}, "data": data, "training": {"batch_size": 2}})
    before = config_preflight(config, tmp_path, full_check=False, cache_dir=tmp_path / "c")
    assert before.can_train, before.blocking
    reg_stats = before.concepts[1]
    assert (reg_stats.images, reg_stats.samples) == (3, 8)  # planned: balanced to the 4 x 2 train samples
    assert "3 of 3 class images are still to be drawn" in " ".join(reg_stats.warnings)

    training = {"epochs": 1, "batch_size": 2, "learning_rate": 1e-3, "seed": 3}
    run, code = train_config(tmp_path, tiny_model("sd15"), train, data=data, training=training, sampling={
        "every_epochs": 0, "steps": 2})
    assert code == 0
    drawn = sorted(reg.glob("*.png"))
    assert [p.name for p in drawn] == ["class-00000.png", "class-00001.png", "class-00002.png"]
    assert {Image.open(p).size for p in drawn} == {(64, 64)}
    assert any("drawing 3 class images for concept 'class'" in e.get("message", "") for e in events(run, "log"))
    assert events(run, "started")[0]["steps_per_epoch"] == before.steps_per_epoch == 8
    after = config_preflight(config, tmp_path, full_check=False, cache_dir=tmp_path / "c")
    assert after.concepts[1].images == 3 and not after.concepts[1].warnings  # now ordinary images

    stamps = [p.stat().st_mtime_ns for p in drawn]
    run, code = train_config(tmp_path, tiny_model("sd15"), train, name="again", data=data, training=training,
                             sampling={"every_epochs": 0, "steps": 2})
    assert code == 0
    assert [p.stat().st_mtime_ns for p in sorted(reg.glob("*.png"))] == stamps  # kept: nothing drawn again
    assert not any("class images" in e.get("message", "") for e in events(run, "log"))
