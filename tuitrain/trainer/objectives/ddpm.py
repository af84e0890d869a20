"""DDPM: the objective of SD 1.x, SD 2.x and SDXL (epsilon or v-prediction).

Noise is added with the base model's own beta schedule through diffusers' DDPMScheduler
(`add_noise`, `get_velocity`), min-SNR weights come from `diffusers.training_utils.compute_snr`,
and zero-terminal-SNR is the scheduler's own `rescale_betas_zero_snr`. The draws are made in
the order tuitrain has always made them (noise, offset noise, timesteps), so runs resumed
from older backups and their tests see the same numbers.
"""

from __future__ import annotations

from typing import Any

import torch

from tuitrain.trainer.errors import TrainingError
from tuitrain.trainer.objectives.base import Noised, Objective, ObjectiveOptions

PREDICTIONS = ("epsilon", "v_prediction")


def training_scheduler(scheduler_config: dict[str, Any], prediction: str, zero_terminal_snr: bool = False) -> Any:
    """A DDPMScheduler with the base model's noise schedule, predicting `prediction`.

    The base model ships a sampling scheduler (PNDM, Euler, ...); its betas are what matter for
    training, and DDPMScheduler.from_config keeps them while ignoring the sampler's own keys.
    """
    from diffusers import DDPMScheduler

    config = dict(scheduler_config)
    config["prediction_type"] = prediction
    if zero_terminal_snr:
        # Lin et al. 2023, "Common Diffusion Noise Schedules and Sample Steps are Flawed": the last
        # timestep becomes pure noise, so the model learns to make very dark / bright images.
        config["rescale_betas_zero_snr"] = True
    return DDPMScheduler.from_config(config)


class DDPMObjective(Objective):
    """Epsilon or v-prediction on a DDPM schedule, with offset noise and min-SNR weighting."""

    def __init__(
        self,
        scheduler_config: dict[str, Any],
        prediction: str,
        settings: ObjectiveOptions,
        noise_offset: float = 0.0,
        min_snr_gamma: float = 0.0,
    ) -> None:
        if prediction in ("", "auto"):
            prediction = str(scheduler_config.get("prediction_type") or "epsilon")
        if prediction not in PREDICTIONS:
            raise TrainingError(
                f"model.prediction: DDPM trains epsilon or v_prediction, got {prediction!r} (from the base model's "
                "scheduler config when model.prediction is auto)"
            )
        if settings.zero_terminal_snr and prediction != "v_prediction":
            # At the last timestep the input is pure noise: an epsilon model would learn to predict its
            # input and nothing about the image (diffusers' and kohya's docs pair it with v-prediction).
            raise TrainingError(
                "objective.zero_terminal_snr: needs v-prediction (model.prediction = 'v_prediction'); with "
                f"{prediction} the last timestep is pure noise and teaches the model nothing"
            )
        self.prediction = prediction
        self.scheduler = training_scheduler(scheduler_config, prediction, settings.zero_terminal_snr)
        self.noise_offset = noise_offset
        self.min_snr_gamma = min_snr_gamma
        self.settings = settings
        self.num_train_timesteps = int(self.scheduler.config.num_train_timesteps)
        top = settings.max_timestep if settings.max_timestep is not None else self.num_train_timesteps
        if top > self.num_train_timesteps or settings.min_timestep >= top:
            raise TrainingError(
                f"objective.max_timestep: this model has {self.num_train_timesteps} timesteps; the range "
                f"[{settings.min_timestep}, {top}) must lie inside [0, {self.num_train_timesteps})"
            )
        self.timestep_range = (settings.min_timestep, top)

    def noise(self, latents: torch.Tensor, generator: torch.Generator | None) -> Noised:
        noise = torch.randn(latents.shape, generator=generator, device=latents.device, dtype=latents.dtype)
        if self.noise_offset:
            # Offset noise (per image and channel) lets the model learn very dark / bright images.
            noise = noise + self.noise_offset * torch.randn(
                (latents.shape[0], latents.shape[1], 1, 1), generator=generator, device=latents.device,
                dtype=latents.dtype,
            )
        sched = self.scheduler
        low, high = self.timestep_range  # (0, num_train_timesteps) unless objective.min/max_timestep say otherwise
        timesteps = torch.randint(low, high, (latents.shape[0],), generator=generator, device=latents.device).long()
        # Drawn after the timesteps, and only when on: runs without them draw exactly what they always drew.
        noise = self.extra_noise(noise, generator)
        noisy = sched.add_noise(latents, self.perturbed(noise, generator), timesteps)
        if self.prediction == "epsilon":
            target = noise
        else:
            target = sched.get_velocity(latents, noise, timesteps)
        return Noised(noisy, timesteps, target)

    def loss_weights(self, noised: Noised) -> torch.Tensor | None:
        """Min-SNR-gamma weighting (Hang et al. 2023) as diffusers' train_text_to_image.py computes it, times
        kohya's debiased estimation weight when objective.debiased_estimation is on."""
        if not self.min_snr_gamma and not self.settings.debiased_estimation:
            return None
        from diffusers.training_utils import compute_snr

        snr = compute_snr(self.scheduler, noised.timesteps)
        weights = torch.ones_like(snr)
        if self.min_snr_gamma:
            clipped = torch.clamp(snr, max=self.min_snr_gamma)
            # As diffusers' scripts: min(snr, gamma) / snr for epsilon, / (snr + 1) for v.
            weights = clipped / (snr + 1) if self.prediction == "v_prediction" else clipped / snr
        if self.settings.debiased_estimation:
            # kohya's apply_debiased_estimation: SNR capped at 1000; 1 / sqrt(SNR), v-prediction 1 / (SNR + 1).
            capped = torch.clamp(snr, max=1000)
            weights = weights * (1 / (capped + 1) if self.prediction == "v_prediction" else 1 / torch.sqrt(capped))
        return weights

    def noise_to_signal(self, noised: Noised) -> torch.Tensor:
        """sqrt((1 - alpha_bar_t) / alpha_bar_t) from the training schedule, as kohya's Huber 'snr' schedule."""
        alphas = self.scheduler.alphas_cumprod.to(noised.timesteps.device)[noised.timesteps]
        return ((1.0 - alphas) / alphas) ** 0.5
