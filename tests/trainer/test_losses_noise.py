"""[objective]'s losses and noise: L1 / (scheduled) pseudo-Huber reach the loop's loss, debiased estimation,
pyramid noise, input perturbation, timestep and sigma ranges; caption dropout with a flow model.

The scheduled Huber's formulas are written out here from kohya's sd-scripts (library/train_util.py,
get_huber_threshold_if_needed and conditional_loss) as the reference."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.trainer.conftest import make_dataset
from tests.trainer.harness import LORA_SETS, events, new_run, train, train_config, trainer_for
from tests.trainer.resume import crash_mid_run, resume_matches
from tuitrain.config import parse_config
from tuitrain.config.errors import ConfigError
from tuitrain.trainer.errors import TrainingError
from tuitrain.trainer.losses import elementwise_loss
from tuitrain.trainer.objectives import ObjectiveSettings, build_objective

torch.set_num_threads(1)

SD15 = {"_class_name": "PNDMScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
        "num_train_timesteps": 1000, "prediction_type": "epsilon"}
SD3 = {"_class_name": "FlowMatchEulerDiscreteScheduler", "num_train_timesteps": 1000, "shift": 3.0}


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def latents(b: int = 4, c: int = 4, h: int = 16, w: int = 16) -> torch.Tensor:
    return torch.randn((b, c, h, w), generator=gen(123))


def kohya_delta(schedule: str, c: float, timesteps: torch.Tensor, alphas_cumprod: torch.Tensor | None,
                n: int = 1000) -> torch.Tensor:
    """get_huber_threshold_if_needed (huber_scale 1)."""
    if schedule == "exponential":
        alpha = -math.log(c) / n
        return torch.exp(-alpha * timesteps.float())
    if schedule == "snr":
        assert alphas_cumprod is not None
        a = alphas_cumprod[timesteps]
        sigmas = ((1.0 - a) / a) ** 0.5
        return (1 - c) / (1 + sigmas) ** 2 + c
    return torch.full(timesteps.shape, c)


def kohya_loss(pred: torch.Tensor, target: torch.Tensor, kind: str, delta: torch.Tensor | None) -> torch.Tensor:
    """conditional_loss with reduction 'none'."""
    if kind == "l1":
        return (pred - target).abs()
    d = delta.view(-1, 1, 1, 1)
    if kind == "huber":
        return 2 * d * (torch.sqrt((pred - target) ** 2 + d**2) - d)
    return 2 * (torch.sqrt((pred - target) ** 2 + d**2) - d)


class Spy:
    """Wraps a bound method, keeping what it returned last."""

    def __init__(self, owner: Any, name: str) -> None:
        self.inner = getattr(owner, name)
        self.last: Any = None
        setattr(owner, name, self)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.last = self.inner(*args, **kwargs)
        return self.last


@pytest.mark.parametrize(("kind", "schedule"), [("l1", "snr"), ("huber", "snr"), ("huber", "exponential"),
                                                ("smooth_l1", "constant"), ("l2", "snr")])
def test_the_loss_type_is_the_loops_loss(tiny_model, tmp_path: Path, kind: str, schedule: str) -> None:
    data = make_dataset(tmp_path / "data", count=4)
    with trainer_for(tmp_path, tiny_model("sd15"), data,
                     objective={"loss_type": kind, "huber_schedule": schedule, "huber_c": 0.2}) as trainer:
        predict, noise = Spy(trainer.adapter, "predict"), Spy(trainer.objective, "noise")
        loss = trainer.loss_of(trainer.prepare(0, 0, [0, 1]))
        pred, noised = predict.last.float(), noise.last
        if kind == "l2":
            expected = torch.nn.functional.mse_loss(pred, noised.target)
        else:
            delta = kohya_delta(schedule, 0.2, noised.timesteps, trainer.objective.scheduler.alphas_cumprod)
            expected = kohya_loss(pred, noised.target.float(), kind, delta).mean()
        assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
        if kind != "l2":  # and it is not the squared error
            assert abs(loss.item() - torch.nn.functional.mse_loss(pred, noised.target).item()) > 1e-3


def test_pseudo_huber_is_squared_for_small_errors_and_linear_for_large_ones() -> None:
    target = torch.zeros(2, 1, 1, 3)
    pred = torch.tensor([0.001, 0.002, 0.004] * 2).reshape(2, 1, 1, 3)
    delta = torch.tensor([1.0, 1.0])
    small = elementwise_loss(pred, target, "huber", delta)
    assert torch.allclose(small, pred**2, rtol=1e-3)  # 2d(sqrt(e^2 + d^2) - d) ~ e^2
    big = elementwise_loss(pred * 10_000, target, "huber", delta)
    assert torch.allclose(big, 2 * (pred * 10_000).abs(), rtol=0.1)  # ~ 2 d |e|
    per_sample = elementwise_loss(torch.full((2, 1, 1, 1), 100.0), torch.zeros(2, 1, 1, 1), "smooth_l1",
                                  torch.tensor([0.1, 1.0]))
    assert per_sample.flatten().tolist() == pytest.approx([2 * (math.hypot(100, 0.1) - 0.1),
                                                           2 * (math.hypot(100, 1.0) - 1.0)])


def test_flow_huber_snr_reads_sigma_over_one_minus_sigma() -> None:
    objective = build_objective("flow", SD3, ObjectiveSettings(loss_type="huber", huber_schedule="snr", huber_c=0.1))
    noised = objective.noise(latents(c=16), gen(1))
    ratio = noised.sigmas / (1 - noised.sigmas)
    assert torch.allclose(objective.huber_delta(noised), 0.9 / (1 + ratio) ** 2 + 0.1)
    exponential = build_objective("flow", SD3, ObjectiveSettings(huber_schedule="exponential", huber_c=0.1))
    delta = exponential.huber_delta(noised)
    assert torch.allclose(delta, torch.exp(math.log(0.1) * noised.sigmas))  # 1 at sigma 0, huber_c at sigma 1


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
def test_debiased_estimation_weighs_by_snr_as_kohya(prediction: str) -> None:
    from diffusers.training_utils import compute_snr

    plain = build_objective("ddpm", SD15, ObjectiveSettings(), prediction)
    debiased = build_objective("ddpm", SD15, ObjectiveSettings(debiased_estimation=True), prediction)
    noised = debiased.noise(latents(), gen(2))
    assert plain.loss_weights(noised) is None
    snr = torch.clamp(compute_snr(debiased.scheduler, noised.timesteps), max=1000)
    expected = 1 / (snr + 1) if prediction == "v_prediction" else 1 / torch.sqrt(snr)
    assert torch.allclose(debiased.loss_weights(noised), expected)
    both = build_objective("ddpm", SD15, ObjectiveSettings(debiased_estimation=True), prediction, min_snr_gamma=5.0)
    only_snr = build_objective("ddpm", SD15, ObjectiveSettings(), prediction, min_snr_gamma=5.0)
    assert torch.allclose(both.loss_weights(noised), only_snr.loss_weights(noised) * expected)


def _neighbour_correlation(noise: torch.Tensor) -> float:
    a, b = noise[..., :, :-1].flatten(), noise[..., :, 1:].flatten()
    return torch.corrcoef(torch.stack([a, b]))[0, 1].item()


@pytest.mark.parametrize(("kind", "config"), [("ddpm", SD15), ("flow", SD3)])
def test_pyramid_noise_has_low_frequencies_and_unit_spread(kind: str, config: dict) -> None:
    x = latents(b=8, h=32, w=32)
    if kind == "flow":
        x = torch.cat([x] * 4, dim=1)
    white = build_objective(kind, config, ObjectiveSettings()).noise(x, gen(3))
    pyramid = build_objective(kind, config, ObjectiveSettings(multires_noise_iterations=6,
                                                              multires_noise_discount=0.9))
    a, b = pyramid.noise(x, gen(3)), pyramid.noise(x, gen(3))
    assert torch.equal(a.noisy, b.noisy)  # every draw from the generator
    noise = a.target if kind == "ddpm" else a.target + x  # flow's target is noise - x0
    assert abs(_neighbour_correlation(white.target if kind == "ddpm" else white.target + x)) < 0.05
    assert _neighbour_correlation(noise) > 0.25
    assert noise.std().item() == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize(("kind", "config"), [("ddpm", SD15), ("flow", SD3)])
def test_input_perturbation_changes_the_input_not_the_target(kind: str, config: dict) -> None:
    x = latents(b=64) if kind == "ddpm" else latents(b=64, c=16)
    plain = build_objective(kind, config, ObjectiveSettings()).noise(x, gen(4))
    perturbed_objective = build_objective(kind, config, ObjectiveSettings(input_perturbation=0.1))
    perturbed = perturbed_objective.noise(x, gen(4))
    assert torch.equal(plain.target, perturbed.target) and torch.equal(plain.timesteps, perturbed.timesteps)
    if kind == "ddpm":
        a = perturbed_objective.scheduler.alphas_cumprod[perturbed.timesteps].view(-1, 1, 1, 1)
        used = (perturbed.noisy - a.sqrt() * x) / (1 - a).sqrt()
    else:
        s = perturbed.sigmas.view(-1, 1, 1, 1)
        used = (perturbed.noisy - (1 - s) * x) / s
    noise = plain.target if kind == "ddpm" else plain.target + x
    assert (used - noise).std().item() == pytest.approx(0.1, rel=0.05)  # gamma times fresh noise


def test_timesteps_stay_in_the_range() -> None:
    objective = build_objective("ddpm", SD15, ObjectiveSettings(min_timestep=100, max_timestep=400))
    drawn = torch.cat([objective.noise(latents(), gen(i)).timesteps for i in range(300)])
    assert drawn.min().item() == 100 and drawn.max().item() == 399
    with pytest.raises(TrainingError, match=r"objective.max_timestep: this model has 500 timesteps; the range \[0, 800\)"):
        build_objective("ddpm", {**SD15, "num_train_timesteps": 500}, ObjectiveSettings(max_timestep=800))


def test_sigmas_stay_in_the_range_with_their_shape() -> None:
    full = build_objective("flow", SD3, ObjectiveSettings())
    ranged = build_objective("flow", SD3, ObjectiveSettings(min_sigma=0.2, max_sigma=0.6))
    for i in range(20):
        a, b = full.noise(latents(c=16), gen(i)), ranged.noise(latents(c=16), gen(i))
        assert torch.allclose(b.sigmas, 0.2 + 0.4 * a.sigmas)
        assert torch.allclose(b.timesteps, b.sigmas * 1000)


@pytest.mark.parametrize(
    ("objective", "line"),
    [
        ({"min_timestep": 500, "max_timestep": 500}, "objective.max_timestep: must be above min_timestep (500), got 500"),
        ({"max_timestep": 1001}, "objective.max_timestep: must be <= 1000, got 1001"),
        ({"min_sigma": 0.5, "max_sigma": 0.4}, "objective.max_sigma: must be above min_sigma (0.5), got 0.4"),
        ({"loss_type": "mse"}, "objective.loss_type: must be one of 'l2', 'l1', 'huber' or 'smooth_l1', got \"mse\""),
        ({"huber_c": 0}, "objective.huber_c: must be > 0, got 0"),
        ({"multires_noise_discount": 1.5}, "objective.multires_noise_discount: must be <= 1, got 1.5"),
        ({"input_perturbation": -0.1}, "objective.input_perturbation: must be >= 0, got -0.1"),
    ],
)
def test_bad_settings_are_one_line_naming_the_key(objective: dict, line: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"objective": objective})
    assert str(err.value) == line


@pytest.mark.parametrize(
    ("table", "line"),
    [
        ({"training": {"ip_noise_gamma": 0.1}},
         "training.ip_noise_gamma: unknown key (did you mean objective.input_perturbation?)"),
        ({"training": {"debiased_estimation_loss": True}},
         "training.debiased_estimation_loss: unknown key (did you mean objective.debiased_estimation?)"),
        ({"training": {"huber_c": 0.1}}, "training.huber_c: unknown key (did you mean objective.huber_c?)"),
        ({"training": {"lr_scheduler_power": 2}}, "training.lr_scheduler_power: unknown key (did you mean training.lr_power?)"),
        ({"training": {"stop_text_encoder_training": 5}},
         "training.stop_text_encoder_training: unknown key (did you mean training.text_encoder_max_steps?)"),
    ],
)
def test_kohyas_names_point_to_ours(table: dict, line: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(table)
    assert str(err.value) == line


def test_the_config_section_reaches_the_objective() -> None:
    section = parse_config({"objective": {"debiased_estimation": True, "min_timestep": 10, "max_timestep": 20,
                                          "multires_noise_iterations": 2, "input_perturbation": 0.05}}).objective
    objective = build_objective("ddpm", SD15, section)
    noised = objective.noise(latents(), gen(5))
    assert ((noised.timesteps >= 10) & (noised.timesteps < 20)).all() and objective.loss_weights(noised) is not None


def test_caption_dropout_gives_flux_the_empty_prompt_and_it_trains(tiny_model, tmp_path: Path) -> None:
    """data.caption_dropout = 1 with a flow family: every caption is dropped to "", the conditioning is the
    empty prompt's (CLIP pooled + T5), and a run trains on it."""
    data = make_dataset(tmp_path / "data", count=4)
    flux = {"model": {"family": "flux"}, "data": {"resolution": 64, "caption_dropout": 1.0}}
    with trainer_for(tmp_path, tiny_model("flux"), data, **flux) as trainer:
        prepared = trainer.prepare(0, 0, [0, 1])
        assert prepared.captions == ["", ""]
        used = trainer._conditioning(prepared.captions)
        empty = trainer.adapter.encode_text(trainer.parts, ["", ""])
        captioned = trainer.adapter.encode_text(trainer.parts, ["a red square with a blue mark"] * 2)
        assert used.keys() == empty.keys()
        assert all(torch.equal(used[k], empty[k]) for k in empty)
        assert any(not torch.equal(used[k], captioned[k]) for k in empty)
        assert math.isfinite(trainer.loss_of(prepared).item())
    run, code = train_config(tmp_path, tiny_model("flux"), data, name="dropped", **flux)
    assert code == 0, events(run)[-1]


def test_a_run_with_every_loss_and_noise_option_resumes_bit_identical(tiny_model, tmp_path: Path) -> None:
    """The extra draws (pyramid layers and their sizes, perturbation noise) come from the loop's seeded
    generator: crashed and resumed, the run ends as the uninterrupted one."""
    model, data = tiny_model("sd15"), make_dataset(tmp_path / "data")
    common = (*LORA_SETS, "training.epochs=3", "saving.backup_every_steps=3", "objective.loss_type=huber",
              "objective.huber_schedule=exponential", "objective.multires_noise_iterations=4",
              "objective.input_perturbation=0.1", "objective.debiased_estimation=true",
              "objective.min_timestep=50", "objective.max_timestep=900")
    straight = new_run("straight", model, data, *common)
    assert train(straight) == 0, events(straight)[-1]
    broken = new_run("broken", model, data, *common)
    last_step = crash_mid_run(broken, (4, 10))
    resume_matches(broken, straight.output / "straight.safetensors", last_step, backup_every=3, in_process=True)
