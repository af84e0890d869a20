"""training.masked_loss: each image's mask file weighs its loss, images without one weigh 1 everywhere.

The weights are checked where they act: the gradient that reaches the UNet's output in a
real trainer's batch_loss is zero wherever the mask is black (unmasked_weight 0), the
loss of an all-white mask is the plain loss, a data set without masks trains exactly as
before, and min-SNR multiplies the normalised per-sample loss.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from tests.trainer.conftest import make_dataset
from tests.trainer.harness import BASE, config_table, merged
from tests.trainer.harness import trainer_for as harness_trainer_for
from tuitrain.config import ConfigError, parse_config
from tuitrain.runs import RunDir
from tuitrain.runs.events import iter_events
from tuitrain.trainer.data import epoch_batches
from tuitrain.trainer.loop import Trainer, run_training
from tuitrain.trainer.masks import per_sample_loss

# A box that does not sit on the 8-pixel latent grid: edge latents are partly covered.
BOX = (12, 20, 36, 44)  # left, top, right, bottom in a 64 x 64 image


def write_mask(image: Path, box: tuple[int, int, int, int] | None = BOX, suffix: str = "-masklabel.png") -> Path:
    """A black mask with a white box (None: all white) beside `image`."""
    mask = Image.new("L", Image.open(image).size, 0 if box else 255)
    if box:
        mask.paste(255, box)
    path = image.with_name(image.stem + suffix)
    mask.save(path)
    return path


def coverage(mask_file: Path, latent: int = 8) -> torch.Tensor:
    """The share of each latent pixel the mask's white covers (8 x 8 pixel blocks), [latent, latent]."""
    pixels = np.asarray(Image.open(mask_file).convert("L"), dtype=np.float64) / 255.0
    size = pixels.shape[0] // latent
    return torch.tensor(pixels.reshape(latent, size, latent, size).mean(axis=(1, 3)), dtype=torch.float32)


# harness.BASE with one epoch of one 4-image batch.
MASKED_DEFAULTS = merged(BASE, {"training": {"epochs": 1, "batch_size": 4, "learning_rate": 1e-3, "seed": 5}})


def base_config(model_path: Path, data_dir: Path, **sections: dict[str, Any]) -> dict[str, Any]:
    return config_table(model_path, data_dir, MASKED_DEFAULTS, **sections)


def trainer_for(tmp_path: Path, model_path: Path, data_dir: Path, name: str = "t",
                **sections: dict[str, Any]) -> contextlib.AbstractContextManager[Trainer]:
    """A set-up Trainer (model loaded, LoRA injected) in this process, torn down like run_training does."""
    return harness_trainer_for(tmp_path, model_path, data_dir, name, MASKED_DEFAULTS, **sections)


def first_batch(trainer: Trainer) -> list[int]:
    cfg = trainer.config.training
    return epoch_batches(trainer.data.samples, trainer.data.repeats, cfg.batch_size, cfg.seed, 0)[0]


def output_gradient(trainer: Trainer, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, d loss / d UNet output) for one batch, through the trainer's own batch_loss."""
    captured: list[torch.Tensor] = []

    def keep(module: torch.nn.Module, args: Any, output: Any) -> None:
        out = output[0] if isinstance(output, tuple) else output.sample
        out.retain_grad()
        captured.append(out)

    handle = trainer.parts.denoiser.register_forward_hook(keep)
    try:
        loss = trainer.batch_loss(indices, 0, 0)
        loss.backward()
    finally:
        handle.remove()
    return loss.detach(), captured[0].grad


# ------------------------------------------------------------------ the weighting itself


def test_weighted_mean_keeps_the_scale_and_ignores_what_weighs_nothing() -> None:
    gen = torch.Generator().manual_seed(0)
    pred = torch.randn(3, 4, 8, 8, generator=gen, requires_grad=True)
    target = torch.randn(3, 4, 8, 8, generator=gen)
    plain = ((pred - target) ** 2).mean(dim=(1, 2, 3))
    assert torch.equal(per_sample_loss(pred, target, [None] * 3, 0.1), plain)  # no masks: exactly as before

    white = torch.ones(1, 8, 8)
    torch.testing.assert_close(per_sample_loss(pred, target, [white, None, white], 0.0), plain, rtol=1e-6, atol=0)

    # A constant error of 2 everywhere: a quarter mask still gives a loss of 4, whatever unmasked_weight.
    quarter = torch.zeros(1, 8, 8)
    quarter[:, :4, :4] = 1
    flat = per_sample_loss(target + 2, target, [quarter] * 3, 0.0)
    torch.testing.assert_close(flat, torch.full((3,), 4.0))

    loss = per_sample_loss(pred, target, [quarter, None, torch.zeros(1, 8, 8)], 0.0)
    loss.sum().backward()
    grad = pred.grad
    assert torch.count_nonzero(grad[0][:, 4:, :]) == 0 and torch.count_nonzero(grad[0][:, :, 4:]) == 0
    assert torch.count_nonzero(grad[0][:, :4, :4]) == 4 * 16
    assert torch.count_nonzero(grad[1]) == grad[1].numel()  # no mask: every pixel counts
    assert loss[2] == 0 and torch.count_nonzero(grad[2]) == 0  # an all-black mask with weight 0 adds nothing


# ------------------------------------------------------------------ in the trainer


def test_gradient_comes_only_from_the_mask_and_images_without_one_weigh_everywhere(tiny_model, tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data", count=4)
    masks = {data / "img0.png": write_mask(data / "img0.png"), data / "img2.png": write_mask(data / "img2.png")}
    with trainer_for(tmp_path, tiny_model("sd15"), data, training={"masked_loss": True, "unmasked_weight": 0.0}) as trainer:
        assert sum(s.mask is not None for s in trainer.data.samples) == 2
        indices = first_batch(trainer)
        _, grad = output_gradient(trainer, indices)
    for row, index in enumerate(indices):
        sample = trainer.data.samples[index]
        nonzero = grad[row].abs().sum(dim=0) > 0
        if sample.path in masks:
            assert torch.equal(nonzero, coverage(masks[sample.path]) > 0), sample.path.name
        else:
            assert bool(nonzero.all()), sample.path.name


def test_all_white_masks_give_the_plain_loss_and_no_masks_change_nothing(tiny_model, tmp_path: Path) -> None:
    plain_data = make_dataset(tmp_path / "plain", count=4)
    white_data = make_dataset(tmp_path / "white", count=4)
    for image in white_data.glob("img?.png"):
        write_mask(image, box=None)
    min_snr = {"min_snr_gamma": 5.0}
    for data, same in ((plain_data, torch.equal), (white_data, lambda a, b: torch.allclose(a, b, rtol=1e-6, atol=0))):
        with trainer_for(tmp_path, tiny_model("sd15"), data, name=data.name, training=min_snr) as trainer:
            indices = first_batch(trainer)
            with torch.no_grad():
                off = trainer.batch_loss(indices, 0, 0)
                trainer.config.training.masked_loss = True
                trainer.config.training.unmasked_weight = 0.0
                on = trainer.batch_loss(indices, 0, 0)
        assert same(on, off), (data.name, on, off)


def test_min_snr_weighs_the_normalised_masked_loss(tiny_model, tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data", count=4)
    masks = {data / f"img{i}.png": write_mask(data / f"img{i}.png") for i in (1, 3)}
    weight, gamma = 0.25, 5.0
    training = {"masked_loss": True, "unmasked_weight": weight, "min_snr_gamma": gamma}
    with trainer_for(tmp_path, tiny_model("sd15"), data, training=training) as trainer:
        seen: dict[str, torch.Tensor] = {}
        noise = trainer.objective.noise  # the loop draws noise, timesteps and target through the objective

        def recording(*args: Any, **kwargs: Any):  # type: ignore[no-untyped-def]
            noised = noise(*args, **kwargs)
            seen.update(timesteps=noised.timesteps, target=noised.target)
            return noised

        trainer.objective.noise = recording  # type: ignore[method-assign]
        predict = trainer.adapter.predict

        def keep_pred(*args: Any, **kwargs: Any) -> torch.Tensor:
            seen["pred"] = predict(*args, **kwargs)
            return seen["pred"]

        trainer.adapter.predict = keep_pred  # type: ignore[method-assign]
        indices = first_batch(trainer)
        with torch.no_grad():
            loss = trainer.batch_loss(indices, 0, 0)
            from diffusers.training_utils import compute_snr

            snr = compute_snr(trainer.parts.noise_scheduler, seen["timesteps"])
    error = (seen["pred"].float() - seen["target"].float()) ** 2
    expected = []
    for row, index in enumerate(indices):
        path = trainer.data.samples[index].path
        w = weight + (1 - weight) * coverage(masks[path]) if path in masks else torch.ones(8, 8)
        expected.append((error[row] * w).sum() / (4 * w.sum()))
    snr_weights = torch.clamp(snr, max=gamma) / snr
    torch.testing.assert_close(loss, (torch.stack(expected) * snr_weights).mean(), rtol=1e-5, atol=0)


def test_masked_loss_trains_and_a_mask_of_another_shape_is_refused(tiny_model, tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data", count=4)
    write_mask(data / "img0.png")
    config = parse_config(base_config(tiny_model("sd15"), data, training={"masked_loss": True, "max_steps": 2}))
    run = RunDir(tmp_path / "ok")
    run.create_folders()
    assert run_training(run, config, tmp_path) == 0
    assert (run.output / "ok.safetensors").is_file()
    started = [e for _, e in iter_events(run.events) if e["type"] == "started"][0]
    assert started["images"] == 4  # the mask is not a training image

    Image.new("L", (64, 32), 255).save(data / "img1-masklabel.png")
    run = RunDir(tmp_path / "bad")
    run.create_folders()
    assert run_training(run, config, tmp_path) == 1
    (error,) = [e for _, e in iter_events(run.events) if e["type"] == "error"]
    assert "img1-masklabel.png is 64x32 but its image img1.png is 64x64" in error["message"]
    assert not [e for _, e in iter_events(run.events) if e["type"] == "step"]  # refused before the first step

    config.training.masked_loss = False  # masks unused: the odd one does not stop the run
    run = RunDir(tmp_path / "unused")
    run.create_folders()
    assert run_training(run, config, tmp_path) == 0


def test_another_mask_suffix_is_read_and_not_trained_on(tiny_model, tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data", count=4)
    write_mask(data / "img0.png", suffix="_mask.png")
    with trainer_for(tmp_path, tiny_model("sd15"), data, data={"mask_suffix": "_mask.png"},
                     training={"masked_loss": True}) as trainer:
        names = sorted(s.path.name for s in trainer.data.samples)
        with_mask = [s.path.name for s in trainer.data.samples if s.mask is not None]
    assert names == [f"img{i}.png" for i in range(4)] and with_mask == ["img0.png"]
    with pytest.raises(ConfigError) as caught:
        parse_config(base_config(tiny_model("sd15"), data, data={"mask_suffix": ".png"}))
    assert "data.mask_suffix" in "\n".join(caught.value.lines())

