"""Training objectives against the formulas of diffusers' training scripts.

References are written out here from the scripts (diffusers examples/text_to_image/train_text_to_image.py
for min-SNR, examples/dreambooth/train_dreambooth_lora_sd3.py and train_dreambooth_lora_flux.py for flow
matching), and DDPM is checked bit for bit against the code tuitrain trained with before objectives had a
module of their own (FamilyAdapter.noise_and_target at e97916f), so resumed runs draw the same numbers.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from diffusers import DDPMScheduler, FlowMatchEulerDiscreteScheduler
from diffusers.training_utils import compute_density_for_timestep_sampling, compute_loss_weighting_for_sd3, compute_snr

from tuitrain.trainer.errors import TrainingError
from tuitrain.trainer.objectives import Noised, ObjectiveSettings, build_objective
from tuitrain.trainer.objectives.ddpm import DDPMObjective
from tuitrain.trainer.objectives.flow import FlowObjective, auto_shift_mu, shift_sigmas

torch.set_num_threads(1)

# The scheduler configs the SD 1.5 and SD 2.1 (768-v) repositories ship, and Flux.1-dev's / SD3's.
SD15 = {
    "_class_name": "PNDMScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
    "clip_sample": False, "num_train_timesteps": 1000, "prediction_type": "epsilon", "set_alpha_to_one": False,
    "skip_prk_steps": True, "steps_offset": 1, "trained_betas": None,
}
SD2_V = {**SD15, "_class_name": "DDIMScheduler", "prediction_type": "v_prediction"}
FLUX = {
    "_class_name": "FlowMatchEulerDiscreteScheduler", "base_image_seq_len": 256, "base_shift": 0.5,
    "max_image_seq_len": 4096, "max_shift": 1.15, "num_train_timesteps": 1000, "shift": 3.0,
    "use_dynamic_shifting": True,
}
SD3 = {"_class_name": "FlowMatchEulerDiscreteScheduler", "num_train_timesteps": 1000, "shift": 3.0}


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def latents(b: int = 4, c: int = 4, h: int = 8, w: int = 8, seed: int = 123) -> torch.Tensor:
    return torch.randn((b, c, h, w), generator=gen(seed))


def flow(config: dict[str, Any] = SD3, **settings: Any) -> FlowObjective:
    objective = build_objective("flow", config, ObjectiveSettings(**settings))
    assert isinstance(objective, FlowObjective)
    return objective


# -- DDPM -----------------------------------------------------------------------------------------


def reference_noise_and_target(
    sched: Any, prediction_type: str, latents: torch.Tensor, generator: torch.Generator | None, noise_offset: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """FamilyAdapter.noise_and_target as of e97916f (tuitrain/trainer/families/base.py), verbatim but for `parts`."""
    noise = torch.randn(latents.shape, generator=generator, device=latents.device, dtype=latents.dtype)
    if noise_offset:
        noise = noise + noise_offset * torch.randn(
            (latents.shape[0], latents.shape[1], 1, 1), generator=generator, device=latents.device, dtype=latents.dtype
        )
    timesteps = torch.randint(
        0, sched.config.num_train_timesteps, (latents.shape[0],), generator=generator, device=latents.device
    ).long()
    noisy = sched.add_noise(latents, noise, timesteps)
    if prediction_type == "epsilon":
        target = noise
    elif prediction_type == "v_prediction":
        target = sched.get_velocity(latents, noise, timesteps)
    else:
        raise ValueError(f"unsupported prediction type {prediction_type!r}")
    return noisy, timesteps, target


def reference_scheduler(config: dict[str, Any], prediction: str) -> Any:
    """families/sd.py::training_scheduler as of e97916f."""
    config = dict(config)
    if prediction == "auto":
        prediction = config.get("prediction_type", "epsilon")
    config["prediction_type"] = prediction
    return DDPMScheduler.from_config(config)


@pytest.mark.parametrize("config", [SD15, SD2_V], ids=["sd15-epsilon", "sd2-v"])
@pytest.mark.parametrize("noise_offset", [0.0, 0.1])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_ddpm_is_bit_exact_with_the_old_noise_and_target(config: dict[str, Any], noise_offset: float,
                                                         dtype: torch.dtype) -> None:
    x = latents().to(dtype)
    objective = build_objective("ddpm", config, None, "auto", noise_offset)
    old_sched = reference_scheduler(config, "auto")
    assert objective.prediction == config["prediction_type"]
    g_new, g_old = gen(7), gen(7)
    got = objective.noise(x, g_new)
    noisy, timesteps, target = reference_noise_and_target(old_sched, config["prediction_type"], x, g_old, noise_offset)
    assert torch.equal(got.noisy, noisy) and torch.equal(got.timesteps, timesteps) and torch.equal(got.target, target)
    assert got.timesteps.dtype == torch.long and got.sigmas is None
    # The same number of draws: the generators are in the same state afterwards.
    assert torch.equal(torch.rand(3, generator=g_new), torch.rand(3, generator=g_old))


def test_ddpm_prediction_auto_reads_the_scheduler_config_and_an_explicit_one_wins() -> None:
    assert build_objective("ddpm", SD15, None, "auto").prediction == "epsilon"
    assert build_objective("ddpm", SD2_V, None, "auto").prediction == "v_prediction"
    v = build_objective("ddpm", SD15, None, "v_prediction")
    assert v.prediction == "v_prediction" and v.scheduler.config.prediction_type == "v_prediction"
    # The base model's own beta schedule, not DDPMScheduler's defaults.
    assert v.scheduler.config.beta_schedule == "scaled_linear" and v.scheduler.config.beta_end == 0.012


@pytest.mark.parametrize("config", [SD15, SD2_V], ids=["epsilon", "v"])
def test_min_snr_weights_are_those_of_train_text_to_image(config: dict[str, Any]) -> None:
    gamma = 5.0
    objective = build_objective("ddpm", config, None, "auto", 0.0, gamma)
    noised = objective.noise(latents(b=16), gen(1))
    got = objective.loss_weights(noised)
    # train_text_to_image.py, --snr_gamma:
    timesteps = noised.timesteps
    snr = compute_snr(objective.scheduler, timesteps)
    mse_loss_weights = torch.stack([snr, gamma * torch.ones_like(timesteps)], dim=1).min(dim=1)[0]
    if objective.scheduler.config.prediction_type == "epsilon":
        mse_loss_weights = mse_loss_weights / snr
    elif objective.scheduler.config.prediction_type == "v_prediction":
        mse_loss_weights = mse_loss_weights / (snr + 1)
    assert got is not None and got.shape == (16,)
    torch.testing.assert_close(got, mse_loss_weights)
    # SNR itself: alpha_bar / (1 - alpha_bar).
    a = objective.scheduler.alphas_cumprod[timesteps]
    torch.testing.assert_close(snr, a / (1 - a))
    assert build_objective("ddpm", config, None, "auto", 0.0, 0.0).loss_weights(noised) is None


def test_zero_terminal_snr_makes_the_last_timestep_pure_noise() -> None:
    settings = ObjectiveSettings(zero_terminal_snr=True)
    objective = build_objective("ddpm", SD15, settings, "v_prediction")
    plain = build_objective("ddpm", SD15, None, "v_prediction")
    assert isinstance(objective, DDPMObjective)
    assert objective.scheduler.alphas_cumprod[-1] == 0 and plain.scheduler.alphas_cumprod[-1] > 0
    from diffusers.schedulers.scheduling_ddpm import rescale_zero_terminal_snr

    torch.testing.assert_close(objective.scheduler.betas, rescale_zero_terminal_snr(plain.scheduler.betas))
    # At t = T: the input is the noise alone and the v target is minus the image.
    x, n = latents(), torch.randn((4, 4, 8, 8), generator=gen(2))
    t = torch.full((4,), 999)
    assert torch.equal(objective.scheduler.add_noise(x, n, t), n)
    torch.testing.assert_close(objective.scheduler.get_velocity(x, n, t), -x)
    # min-SNR with v stays finite where the SNR is 0.
    weights = build_objective("ddpm", SD15, settings, "v_prediction", 0.0, 5.0).loss_weights(Noised(x, t, x))
    assert weights is not None and torch.equal(weights, torch.zeros(4))


def test_zero_terminal_snr_is_refused_with_epsilon() -> None:
    with pytest.raises(TrainingError, match=r"^objective.zero_terminal_snr: needs v-prediction"):
        build_objective("ddpm", SD15, ObjectiveSettings(zero_terminal_snr=True), "auto")


# -- flow matching ------------------------------------------------------------------------------------


def script_flow_step(
    scheduler_config: dict[str, Any], weighting_scheme: str, model_input: torch.Tensor, generator: torch.Generator,
    logit_mean: float = 0.0, logit_std: float = 1.0, mode_scale: float = 1.29,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One step of train_dreambooth_lora_sd3.py / train_dreambooth_lora_flux.py (the noise drawn from
    `generator` instead of the global RNG): (noisy, timesteps, target, sigmas, weighting)."""
    noise_scheduler_copy = FlowMatchEulerDiscreteScheduler.from_config(scheduler_config)

    def get_sigmas(timesteps: torch.Tensor, n_dim: int = 4, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        sigmas = noise_scheduler_copy.sigmas.to(dtype=dtype)
        schedule_timesteps = noise_scheduler_copy.timesteps
        step_indices = [(schedule_timesteps == t).nonzero().item() for t in timesteps]
        sigma = sigmas[step_indices].flatten()
        while len(sigma.shape) < n_dim:
            sigma = sigma.unsqueeze(-1)
        return sigma

    noise = torch.randn(model_input.shape, generator=generator, dtype=model_input.dtype)
    bsz = model_input.shape[0]
    u = compute_density_for_timestep_sampling(
        weighting_scheme=weighting_scheme, batch_size=bsz, logit_mean=logit_mean, logit_std=logit_std,
        mode_scale=mode_scale, generator=generator,
    )
    indices = (u * noise_scheduler_copy.config.num_train_timesteps).long()
    timesteps = noise_scheduler_copy.timesteps[indices]
    sigmas = get_sigmas(timesteps, n_dim=model_input.ndim, dtype=model_input.dtype)
    noisy_model_input = (1.0 - sigmas) * model_input + sigmas * noise
    target = noise - model_input
    weighting = compute_loss_weighting_for_sd3(weighting_scheme=weighting_scheme, sigmas=sigmas)
    return noisy_model_input, timesteps, target, sigmas.flatten(), weighting.flatten()


# The scripts' one --weighting_scheme both picks the timestep density and weighs the loss; tuitrain
# splits it into objective.timestep_sampling and objective.loss_weighting.
SCRIPT_SCHEMES = {
    "none": ("uniform", "none"),
    "logit_normal": ("logit_normal", "none"),
    "mode": ("mode", "none"),
    "sigma_sqrt": ("uniform", "sigma_sqrt"),
    "cosmap": ("uniform", "cosmap"),
}


@pytest.mark.parametrize("config", [SD3, FLUX], ids=["sd3", "flux"])
@pytest.mark.parametrize("scheme", list(SCRIPT_SCHEMES))
def test_flow_matches_the_diffusers_training_scripts(config: dict[str, Any], scheme: str) -> None:
    sampling, weighting = SCRIPT_SCHEMES[scheme]
    objective = flow(config, timestep_sampling=sampling, loss_weighting=weighting, logit_mean=0.3, logit_std=1.2)
    x = latents(b=8, c=16)
    got = objective.noise(x, gen(11))
    noisy, timesteps, target, sigmas, weights = script_flow_step(config, scheme, x, gen(11), 0.3, 1.2)
    assert torch.equal(got.noisy, noisy) and torch.equal(got.target, target)
    assert torch.equal(got.timesteps, timesteps) and got.sigmas is not None and torch.equal(got.sigmas, sigmas)
    assert got.timesteps.dtype == torch.float32
    torch.testing.assert_close(got.timesteps, got.sigmas * 1000)
    w = objective.loss_weights(got)
    if weighting == "none":
        assert w is None
    else:
        assert w is not None and torch.equal(w, weights)


def test_flow_loss_weightings_are_the_sd3_formulas() -> None:
    noised = Noised(latents(b=3), torch.zeros(3), latents(b=3), sigmas=torch.tensor([0.1, 0.5, 0.9]))
    s = noised.sigmas
    assert s is not None
    torch.testing.assert_close(flow(loss_weighting="sigma_sqrt").loss_weights(noised), 1 / s**2)
    torch.testing.assert_close(flow(loss_weighting="cosmap").loss_weights(noised), 2 / (math.pi * (1 - 2 * s + 2 * s**2)))
    assert flow(loss_weighting="none").loss_weights(noised) is None


def test_static_shift() -> None:
    sigma = torch.tensor([0.25, 0.5, 0.75, 1.0])
    torch.testing.assert_close(shift_sigmas(sigma, 3.0), torch.tensor([0.5, 0.75, 0.9, 1.0]))
    torch.testing.assert_close(shift_sigmas(sigma, 1.0), sigma)
    # Unset: the scheduler config's (SD3: 3; Flux: none, it shifts by resolution when sampling).
    assert flow(SD3).static_shift == 3.0 and flow(FLUX).static_shift == 1.0
    # Set: ours, whatever the config says; the table is FlowMatchEulerDiscreteScheduler's with that shift.
    objective = flow(FLUX, shift=2.0)
    assert objective.static_shift == 2.0
    unshifted = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000).sigmas
    torch.testing.assert_close(objective.scheduler.sigmas, shift_sigmas(unshifted, 2.0))
    # A draw: noise first, then u from the same generator, then the shifted table at u * N.
    x = latents(c=16)
    g = gen(5)
    torch.randn(x.shape, generator=g)
    u = objective.sample_u(4, g, x.device)
    got = objective.noise(x, gen(5)).sigmas
    assert got is not None
    torch.testing.assert_close(got, shift_sigmas(unshifted[(u * 1000).long()], 2.0))


def test_auto_shift_follows_the_image_size_as_flux_does() -> None:
    from diffusers.pipelines.flux.pipeline_flux import calculate_shift

    for seq in (256, 1024, 4096, 6000):
        assert auto_shift_mu(seq) == pytest.approx(calculate_shift(seq, 256, 4096, 0.5, 1.15))
    objective = flow(FLUX, auto_shift=True)
    assert objective.static_shift == 1.0
    # 1024 x 1024 pixels: 128 x 128 latents, 64 x 64 patches of 2 x 2 -> mu = max_shift.
    big, small = torch.zeros(1, 16, 128, 128), torch.zeros(1, 16, 64, 64)
    assert objective.image_seq_len(big) == 4096 and objective.mu(big) == pytest.approx(1.15)
    assert objective.image_seq_len(small) == 1024 and objective.mu(small) == pytest.approx(0.5 + 768 * 0.65 / 3840)
    # sigma' = exp(mu) / (exp(mu) + (1 / sigma - 1)) on the unshifted table.
    x = torch.randn((4, 16, 128, 128), generator=gen(1))
    g = gen(9)
    torch.randn(x.shape, generator=g)
    u = objective.sample_u(4, g, x.device)
    sigma = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000).sigmas[(u * 1000).long()]
    mu = 1.15
    expected = math.exp(mu) / (math.exp(mu) + (1 / sigma - 1))
    got = objective.noise(x, gen(9))
    assert got.sigmas is not None
    torch.testing.assert_close(got.sigmas, expected)
    torch.testing.assert_close(got.timesteps, expected * 1000)
    assert bool((got.sigmas >= sigma).all())  # a positive mu shifts towards noise
    # Smaller images shift less (the same draws u).
    lower, higher = objective.sigmas_for(u, small), objective.sigmas_for(u, big)
    assert bool((lower <= higher).all()) and bool((lower < higher).any())


def test_a_draw_of_exactly_1_takes_the_last_sigma() -> None:
    """mode gives 1 for u = 0 and a sigmoid can round to 1: the scripts' index would be one past the table."""
    objective = flow(SD3, shift=1.0)
    got = objective.sigmas_for(torch.tensor([1.0, 0.0]), latents(b=2))
    torch.testing.assert_close(got, torch.tensor([0.001, 1.0]))


def test_auto_shift_excludes_a_static_shift() -> None:
    with pytest.raises(TrainingError, match=r"^objective.shift: leave it unset with objective.auto_shift"):
        flow(FLUX, auto_shift=True, shift=3.0)


def _sigmas(n: int = 20000, seed: int = 0, config: dict[str, Any] | None = None, **settings: Any) -> torch.Tensor:
    objective = flow(config or {"num_train_timesteps": 1000}, **settings)
    sigmas = objective.noise(torch.zeros((n, 1, 1, 1)), gen(seed)).sigmas
    assert sigmas is not None
    return sigmas


def test_timestep_samplings_have_their_shapes() -> None:
    uniform = _sigmas(timestep_sampling="uniform")
    logit = _sigmas(timestep_sampling="logit_normal")
    mode = _sigmas(timestep_sampling="mode")
    cosmap = _sigmas(timestep_sampling="cosmap")
    for s in (uniform, logit, mode, cosmap):
        assert bool(((s > 0) & (s <= 1)).all())
        assert s.mean().item() == pytest.approx(0.5, abs=0.01)  # all symmetric around 0.5 with these settings
    # Logit-normal with mean 0 is symmetric: its quantiles mirror around 0.5.
    q = torch.tensor([0.1, 0.25])
    torch.testing.assert_close(torch.quantile(logit, q), 1 - torch.quantile(logit, 1 - q), atol=0.01, rtol=0)
    assert uniform.std().item() == pytest.approx(1 / math.sqrt(12), abs=0.01)
    # logit-normal, mode (s > 0) and cosmap put more draws mid-way than uniform.
    for s in (logit, mode, cosmap):
        assert s.std().item() < uniform.std().item() - 0.02
    # A positive logit mean means less noise, as in diffusers' scripts (u indexes sigmas running from 1 down).
    assert _sigmas(timestep_sampling="logit_normal", logit_mean=1.0).mean().item() < 0.4
    # A negative mode scale puts more draws at the ends.
    assert _sigmas(timestep_sampling="mode", mode_scale=-0.8).std().item() > uniform.std().item()


def test_sigmoid_is_a_logit_normal_with_mean_0() -> None:
    sigmoid = _sigmas(timestep_sampling="sigmoid", sigmoid_scale=1.7, logit_mean=2.0)  # logit_mean is not its
    logit = _sigmas(timestep_sampling="logit_normal", logit_mean=0.0, logit_std=1.7)
    torch.testing.assert_close(sigmoid, logit)
    # sigmoid(scale * randn): the larger the scale, the more draws at the ends.
    assert _sigmas(timestep_sampling="sigmoid", sigmoid_scale=3.0).std() > sigmoid.std()


@pytest.mark.parametrize("sampling", ["uniform", "logit_normal", "mode", "cosmap", "sigmoid"])
def test_flow_draws_are_deterministic_per_generator(sampling: str) -> None:
    objective = flow(SD3, timestep_sampling=sampling)
    objective_offset = build_objective("flow", SD3, ObjectiveSettings(timestep_sampling=sampling), noise_offset=0.1)
    x = latents(c=16)
    for obj in (objective, objective_offset):
        a, b, c = obj.noise(x, gen(4)), obj.noise(x, gen(4)), obj.noise(x, gen(5))
        assert torch.equal(a.noisy, b.noisy) and torch.equal(a.timesteps, b.timesteps)
        assert a.sigmas is not None and b.sigmas is not None and torch.equal(a.sigmas, b.sigmas)
        assert not torch.equal(a.noisy, c.noisy) and not torch.equal(a.timesteps, c.timesteps)


def test_ddpm_draws_are_deterministic_per_generator() -> None:
    objective = build_objective("ddpm", SD15, None, "auto", 0.1)
    a, b, c = objective.noise(latents(), gen(4)), objective.noise(latents(), gen(4)), objective.noise(latents(), gen(5))
    assert torch.equal(a.noisy, b.noisy) and torch.equal(a.timesteps, b.timesteps)
    assert not torch.equal(a.noisy, c.noisy)


def test_flow_noise_offset_adds_one_value_per_image_and_channel() -> None:
    x = latents(c=16)
    plain = flow(SD3, timestep_sampling="uniform").noise(x, gen(8))
    offset = build_objective("flow", SD3, ObjectiveSettings(timestep_sampling="uniform"), noise_offset=0.1)
    shifted = offset.noise(x, gen(8))
    # noise - x0 is the target; the offset's difference is constant over each image and channel.
    diff = shifted.target - plain.target
    torch.testing.assert_close(diff, diff[..., :1, :1].expand_as(diff), atol=1e-6, rtol=0)
    assert diff.abs().max() > 0


# -- building -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("ddpm", SD15, None, "flow"), r"^model.prediction: this family trains with DDPM"),
        (("flow", SD3, None, "epsilon"), r"^model.prediction: this family trains with flow matching"),
        (("flow", SD3, None, "v_prediction"), r"^model.prediction: this family trains with flow matching"),
        (("flow", SD3, None, "auto", 0.0, 5.0), r"^training.min_snr_gamma: min-SNR weighting is for DDPM"),
        (("ddpm", {**SD15, "prediction_type": "sample"}, None, "auto"), r"^model.prediction: DDPM trains epsilon"),
    ],
)
def test_combinations_that_cannot_train_are_refused_in_one_line(args: tuple[Any, ...], message: str) -> None:
    with pytest.raises(TrainingError, match=message) as info:
        build_objective(*args)
    assert "\n" not in str(info.value)


def test_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown objective kind"):
        build_objective("score", SD15)


def test_settings_defaults_are_the_schemas_and_the_config_section_works_as_settings() -> None:
    from dataclasses import asdict

    from tuitrain.config import parse_config
    from tuitrain.config.schema import ObjectiveSection

    assert asdict(ObjectiveSettings()) == ObjectiveSection().model_dump()
    section = parse_config({"objective": {"timestep_sampling": "mode", "mode_scale": 0.5, "shift": 2.0}}).objective
    a = build_objective("flow", SD3, section).noise(latents(c=16), gen(1))
    b = flow(SD3, timestep_sampling="mode", mode_scale=0.5, shift=2.0).noise(latents(c=16), gen(1))
    assert torch.equal(a.noisy, b.noisy)


def test_preconditioned_outputs_compare_clean_latents_which_for_l2_is_sigma_squared_weighting() -> None:
    """objective.precondition_outputs (diffusers' SD3 script): the loss compares x_t - sigma v_pred with the clean
    latents; for L2 that is the velocity loss times sigma^2, sample by sample."""
    x0 = latents()
    plain, pre = flow(), flow(precondition_outputs=True)
    noised = plain.noise(x0, gen(3))
    again = pre.noise(x0, gen(3))
    assert torch.equal(noised.noisy, again.noisy) and torch.equal(again.clean, x0)  # the same draws as before
    pred = torch.randn(x0.shape, generator=gen(4))
    velocity = plain.per_sample_loss(pred, noised, [None] * 4, 1.0)
    clean = pre.per_sample_loss(pred, again, [None] * 4, 1.0)
    torch.testing.assert_close(clean, velocity * noised.sigmas ** 2, rtol=1e-5, atol=1e-7)
    exact = torch.nn.functional.mse_loss(again.noisy - again.sigmas.reshape(-1, 1, 1, 1) * pred, x0,
                                         reduction="none").mean(dim=(1, 2, 3))
    torch.testing.assert_close(clean, exact, rtol=1e-5, atol=1e-7)
