"""Continuous-time DDPM (Würstchen / Stable Cascade stage C): epsilon on a cosine schedule of t in [0, 1].

As diffusers' examples/wuerstchen/text_to_image/train_text_to_image_prior.py trains the prior: t drawn
uniformly in [0, 1], x_t = sqrt(a(t)) x0 + sqrt(1 - a(t)) n with DDPMWuerstchenScheduler's a(t) (the
cosine schedule of Nichol & Dhariwal with s = 0.008, clamped to [1e-4, 0.9999]; the same schedule the
original Stable Cascade code's GDF uses for stage C), the denoiser called with t itself (its
timestep_ratio), and the loss the MSE to n. The noise goes through the scheduler's own add_noise.

What the DDPM options mean here: objective.min_timestep / max_timestep are read in thousandths of t
(0 to 1000, as the integer schedules count), min_snr_gamma and debiased_estimation weigh by
SNR(t) = a / (1 - a). v-prediction and zero-terminal-SNR have no counterpart (the published priors
predict epsilon, and a(1) is clamped above 0): both are refused. The original trainer's adaptive
loss weight (GDF's AdaptiveLossWeight) is not reproduced; diffusers' example trains without it.
"""

from __future__ import annotations

from typing import Any

import torch

from tuitrain.trainer.errors import TrainingError
from tuitrain.trainer.objectives.base import Noised, Objective, ObjectiveOptions

# How many "timesteps" objective.min_timestep / max_timestep count over [0, 1].
THOUSANDTHS = 1000


def is_continuous_schedule(scheduler_config: dict[str, Any]) -> bool:
    """Whether a scheduler config is DDPMWuerstchenScheduler's (scaler and s, no discrete timestep table)."""
    return "s" in scheduler_config and "scaler" in scheduler_config and "num_train_timesteps" not in scheduler_config


class ContinuousDDPMObjective(Objective):
    """Epsilon prediction with t ~ U[t_min, t_max) in [0, 1] on DDPMWuerstchenScheduler's cosine schedule."""

    prediction = "epsilon"
    num_train_timesteps = 1  # the Huber "exponential" schedule reads t / this: t itself

    def __init__(self, scheduler_config: dict[str, Any], prediction: str, settings: ObjectiveOptions,
                 noise_offset: float = 0.0, min_snr_gamma: float = 0.0) -> None:
        from diffusers import DDPMWuerstchenScheduler

        if prediction not in ("", "auto", "epsilon"):
            raise TrainingError(
                f"model.prediction: this model predicts epsilon on a continuous-time schedule, not {prediction!r}; "
                "set it to auto or epsilon"
            )
        if settings.zero_terminal_snr:
            raise TrainingError("objective.zero_terminal_snr: a continuous-time schedule has no beta table to "
                                "rescale (and this model predicts epsilon); turn it off")
        top = settings.max_timestep if settings.max_timestep is not None else THOUSANDTHS
        if top > THOUSANDTHS or settings.min_timestep >= top:
            raise TrainingError(
                f"objective.max_timestep: this model's time runs over [0, 1], counted here in thousandths; the range "
                f"[{settings.min_timestep}, {top}) must lie inside [0, {THOUSANDTHS})"
            )
        config = {k: v for k, v in scheduler_config.items() if not k.startswith("_")}
        self.scheduler = DDPMWuerstchenScheduler.from_config(config)
        self.settings = settings
        self.noise_offset = noise_offset
        self.min_snr_gamma = min_snr_gamma
        self.t_range = (settings.min_timestep / THOUSANDTHS, top / THOUSANDTHS)

    def alphas(self, t: torch.Tensor) -> torch.Tensor:
        """a(t), the signal's share of the variance at time t (the scheduler's own formula)."""
        return self.scheduler._alpha_cumprod(t.float(), t.device)  # noqa: SLF001 - its only public use is add_noise

    def noise(self, latents: torch.Tensor, generator: torch.Generator | None) -> Noised:
        b = latents.shape[0]
        noise = torch.randn(latents.shape, generator=generator, device=latents.device, dtype=latents.dtype)
        if self.noise_offset:
            noise = noise + self.noise_offset * torch.randn(
                (b, latents.shape[1], 1, 1), generator=generator, device=latents.device, dtype=latents.dtype
            )
        low, high = self.t_range
        t = low + (high - low) * torch.rand((b,), generator=generator, device=latents.device)
        noise = self.extra_noise(noise, generator)
        noisy = self.scheduler.add_noise(latents, self.perturbed(noise, generator), t)
        return Noised(noisy.to(latents.dtype), t, noise)

    def snr(self, noised: Noised) -> torch.Tensor:
        a = self.alphas(noised.timesteps)
        return a / (1 - a)

    def loss_weights(self, noised: Noised) -> torch.Tensor | None:
        """Min-SNR-gamma (epsilon: min(SNR, gamma) / SNR) and kohya's debiased estimation (1 / sqrt(SNR)), as the
        discrete DDPM objective weighs them."""
        if not self.min_snr_gamma and not self.settings.debiased_estimation:
            return None
        snr = self.snr(noised)
        weights = torch.ones_like(snr)
        if self.min_snr_gamma:
            weights = torch.clamp(snr, max=self.min_snr_gamma) / snr
        if self.settings.debiased_estimation:
            weights = weights / torch.sqrt(torch.clamp(snr, max=1000))
        return weights

    def noise_to_signal(self, noised: Noised) -> torch.Tensor:
        return self.snr(noised) ** -0.5
