"""[objective]: How noise and timesteps are drawn and samples weighed: DDPM's and flow matching's own settings."""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from tuitrain.config.fields import Section, option


class ObjectiveSection(Section):
    """How noise and timesteps are drawn and samples weighed: DDPM's and flow matching's own settings.

    training.noise_offset and training.min_snr_gamma stay in [training], where existing configs have them.
    Each option is marked with the objective that uses it; the form shows it only for those families.
    """

    group = "training"

    timestep_sampling: Literal["uniform", "logit_normal", "mode", "cosmap", "sigmoid"] = option(
        "logit_normal",
        "Flow matching: how noise levels are drawn. uniform; logit_normal (logit_mean, logit_std: SD3's choice, "
        "most draws mid-way); mode (mode_scale); cosmap; sigmoid (sigmoid(sigmoid_scale * randn), as SimpleTuner "
        "and ai-toolkit; the same as logit_normal with mean 0 and std sigmoid_scale).",
        objective="flow",
    )
    logit_mean: float = option(
        0.0,
        "Flow matching, logit_normal: mean of the normal draw before the sigmoid (0: centred on sigma 0.5; above 0: "
        "less noise, as in diffusers' scripts, where the draw picks from the scheduler's sigmas running from 1 down).",
        objective="flow", ge=-10.0, le=10.0,
    )
    logit_std: float = option(
        1.0, "Flow matching, logit_normal: spread of the normal draw before the sigmoid (larger: more extremes).",
        objective="flow", gt=0.0, le=10.0,
    )
    mode_scale: float = option(
        1.29,
        "Flow matching, mode: SD3's mode sampling scale s (diffusers' default 1.29; 0: uniform). It stays a "
        "valid distribution from -1 to 1.75.",
        objective="flow", ge=-1.0, le=1.75,
    )
    sigmoid_scale: float = option(
        1.0, "Flow matching, sigmoid: the scale of randn before the sigmoid (larger: more extremes).",
        objective="flow", gt=0.0, le=10.0,
    )
    shift: float | None = option(
        None,
        "Flow matching: static timestep shift, sigma' = shift * sigma / (1 + (shift - 1) * sigma); above 1 trains "
        "more at high noise (SD3 uses 3). Unset: the base model's scheduler config's shift, as diffusers' training "
        "scripts do (1 for models that shift by resolution, e.g. Flux).",
        objective="flow", ge=0.1, le=20.0,
    )
    auto_shift: bool = option(
        False,
        "Flow matching: shift each batch by its image size as Flux's sampler does (mu between the scheduler "
        "config's base_shift and max_shift over its image sequence lengths). Leave shift unset with it.",
        objective="flow",
    )
    loss_weighting: Literal["none", "sigma_sqrt", "cosmap"] = option(
        "none",
        "Flow matching: per-sample loss weights by noise level (diffusers' compute_loss_weighting_for_sd3): none, "
        "sigma_sqrt (1 / sigma^2), cosmap.",
        objective="flow",
    )
    precondition_outputs: bool = option(
        False,
        "Flow matching: compare the clean latents the prediction implies (noisy - sigma x prediction) with the "
        "clean latents, instead of the velocities (diffusers' SD3 script's precondition_outputs): for L2 the same "
        "as weighting each sample by sigma^2, so low-noise steps count more.",
        objective="flow",
    )
    zero_terminal_snr: bool = option(
        False,
        "DDPM: rescale the noise schedule so the last timestep is pure noise (Lin et al. 2023): the model learns "
        "truly dark and bright images. Needs model.prediction = v_prediction; the model must then be sampled "
        "with a zero-terminal-SNR schedule too.",
        objective="ddpm",
    )

    loss_type: Literal["l2", "l1", "huber", "smooth_l1"] = option(
        "l2",
        "How the prediction's error counts: l2 (mean squared, the usual); l1 (absolute); huber (pseudo-Huber: "
        "squared for errors below the delta, absolute above; kohya's scheduled Huber, Khrapov et al. 2024, "
        "resists outliers in the data); smooth_l1 (the same curve not scaled by the delta). The delta is set "
        "by huber_schedule and huber_c.",
    )
    huber_schedule: Literal["constant", "exponential", "snr"] = option(
        "snr",
        "huber / smooth_l1: the delta by noise level (kohya's): constant (huber_c); exponential (1 at no "
        "noise down to huber_c at full noise); snr ((1 - huber_c) / (1 + noise-to-signal)^2 + huber_c: "
        "squared-like at low noise, robust at high noise; flow: noise-to-signal = sigma / (1 - sigma)).",
    )
    huber_c: float = option(
        0.1, "huber / smooth_l1: the delta at full noise (kohya's huber_c; smaller: more robust).",
        gt=0.0, le=10.0,
    )
    debiased_estimation: bool = option(
        False,
        "DDPM: weigh each sample by 1 / sqrt(SNR) (v-prediction: 1 / (SNR + 1)), SNR capped at 1000 "
        "(kohya's debiased estimation loss, Yu et al. 2024): less weight on barely-noised timesteps. "
        "Combines with training.min_snr_gamma.",
        objective="ddpm",
    )
    multires_noise_iterations: int = option(
        0,
        "Multi-resolution (pyramid) noise: add this many layers of upscaled low-resolution noise (kohya's "
        "multires_noise_iterations; 6-10 is common; 0: off). Helps large areas of colour and contrast.",
        ge=0, le=20,
    )
    multires_noise_discount: float = option(
        0.3, "Multi-resolution noise: each coarser layer's weight is this times the previous one's (kohya: 0.3).",
        gt=0.0, le=1.0,
    )
    input_perturbation: float = option(
        0.0,
        "Input perturbation (Ning et al. 2023, diffusers' --input_perturbation): the noisy input uses the noise "
        "plus this times fresh noise while the target keeps the plain noise (0.1 is the paper's; 0: off).",
        ge=0.0, le=1.0,
    )
    min_timestep: int = option(
        0, "DDPM: draw training timesteps from min_timestep (kohya's min_timestep; 0: from the start).",
        objective="ddpm", ge=0, le=999,
    )
    max_timestep: int | None = option(
        None,
        "DDPM: draw training timesteps below max_timestep (exclusive, kohya's max_timestep). Unset: up to the "
        "model's last (1000).",
        objective="ddpm", ge=1, le=1000,
    )
    min_sigma: float = option(
        0.0,
        "Flow matching: the lowest noise level trained; drawn levels are scaled into [min_sigma, max_sigma] "
        "after the shift, keeping the distribution's shape.",
        objective="flow", ge=0.0, lt=1.0,
    )
    max_sigma: float = option(
        1.0, "Flow matching: the highest noise level trained (see min_sigma).", objective="flow", gt=0.0, le=1.0,
    )

    @model_validator(mode="after")
    def _ranges_are_ranges(self) -> ObjectiveSection:
        if self.max_timestep is not None and self.max_timestep <= self.min_timestep:
            raise ValueError(
                f"max_timestep: must be above min_timestep ({self.min_timestep}), got {self.max_timestep}"
            )
        if self.max_sigma <= self.min_sigma:
            raise ValueError(f"max_sigma: must be above min_sigma ({self.min_sigma:g}), got {self.max_sigma:g}")
        return self

    @model_validator(mode="after")
    def _one_kind_of_shift(self) -> ObjectiveSection:
        if self.auto_shift and self.shift is not None:
            raise ValueError(
                f"shift: leave it unset with auto_shift = true (the shift then follows each image's size), "
                f"got {self.shift:g}"
            )
        return self
