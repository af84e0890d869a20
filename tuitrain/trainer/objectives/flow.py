"""Flow matching (rectified flow): the objective of Flux and SD3.

As diffusers' train_dreambooth_lora_flux.py and train_dreambooth_lora_sd3.py do it: draw u
with `compute_density_for_timestep_sampling`, take the noise level from the scheduler's
table of training sigmas (`sigmas[(u * num_train_timesteps).long()]`), mix
x_t = (1 - sigma) x0 + sigma n, and train the denoiser to predict the velocity n - x0. Loss
weights are `compute_loss_weighting_for_sd3`'s. On top of the scripts: cosmap and sigmoid
timestep sampling, a static shift of our own choosing, and Flux's resolution-dependent shift
applied per batch (the scripts train Flux unshifted).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from tuitrain.trainer.errors import TrainingError
from tuitrain.trainer.objectives.base import Noised, Objective, ObjectiveOptions

TIMESTEP_SAMPLINGS = ("uniform", "logit_normal", "mode", "cosmap", "sigmoid")
LOSS_WEIGHTINGS = ("none", "sigma_sqrt", "cosmap")

# FlowMatchEulerDiscreteScheduler's defaults (Flux's scheduler config holds the same numbers).
DEFAULT_BASE_SHIFT = 0.5
DEFAULT_MAX_SHIFT = 1.15
DEFAULT_BASE_SEQ_LEN = 256
DEFAULT_MAX_SEQ_LEN = 4096


def shift_sigmas(sigmas: torch.Tensor, shift: float) -> torch.Tensor:
    """SD3's static shift, sigma' = shift * sigma / (1 + (shift - 1) * sigma), as
    FlowMatchEulerDiscreteScheduler applies it to its table (shift > 1: more training at high noise)."""
    return shift * sigmas / (1 + (shift - 1) * sigmas)


def auto_shift_mu(
    image_seq_len: int,
    base_seq_len: int = DEFAULT_BASE_SEQ_LEN,
    max_seq_len: int = DEFAULT_MAX_SEQ_LEN,
    base_shift: float = DEFAULT_BASE_SHIFT,
    max_shift: float = DEFAULT_MAX_SHIFT,
) -> float:
    """Flux's mu for an image of `image_seq_len` patches: linear from base_shift at base_seq_len to
    max_shift at max_seq_len.

    The same line as diffusers.pipelines.flux.pipeline_flux.calculate_shift (a test compares them);
    written here because importing that pipeline module imports transformers' text models.
    """
    slope = (max_shift - base_shift) / (max_seq_len - base_seq_len)
    return image_seq_len * slope + (base_shift - slope * base_seq_len)


class FlowObjective(Objective):
    """Rectified flow: x_t = (1 - sigma) x0 + sigma n, target n - x0."""

    prediction = "flow"

    def __init__(
        self,
        scheduler_config: dict[str, Any],
        settings: ObjectiveOptions,
        noise_offset: float = 0.0,
        patch_size: int = 2,
    ) -> None:
        from diffusers import FlowMatchEulerDiscreteScheduler

        if settings.timestep_sampling not in TIMESTEP_SAMPLINGS:
            raise ValueError(f"objective.timestep_sampling: unknown {settings.timestep_sampling!r}")
        if settings.loss_weighting not in LOSS_WEIGHTINGS:
            raise ValueError(f"objective.loss_weighting: unknown {settings.loss_weighting!r}")
        if settings.auto_shift and settings.shift is not None:
            raise TrainingError(
                "objective.shift: leave it unset with objective.auto_shift (the shift then follows each image's size)"
            )
        config = dict(scheduler_config)
        if settings.auto_shift:
            static = 1.0  # the table stays unshifted; noise() shifts each batch by its size
        elif settings.shift is not None:
            static = float(settings.shift)
        else:
            # Unset: what diffusers' scripts train with, the table the base model's scheduler config makes
            # (SD3: shift 3; Flux shifts by resolution when sampling only, so its table is unshifted).
            static = 1.0 if config.get("use_dynamic_shifting") else float(config.get("shift") or 1.0)
        config.update(shift=static, use_dynamic_shifting=False)
        self.scheduler = FlowMatchEulerDiscreteScheduler.from_config(config)
        self.static_shift = static
        self.settings = settings
        self.noise_offset = noise_offset
        self.patch_size = patch_size
        self.num_train_timesteps = int(self.scheduler.config.num_train_timesteps)

    # -- timesteps ----------------------------------------------------------------------------
    def sample_u(self, batch_size: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
        """batch_size draws in [0, 1] from the configured timestep distribution (float32)."""
        from diffusers.training_utils import compute_density_for_timestep_sampling

        s = self.settings
        scheme = s.timestep_sampling
        if scheme == "cosmap":
            # SD3 paper (Esser et al. 2024) eq. 21; compute_density_for_timestep_sampling has no cosmap.
            u = torch.rand((batch_size,), generator=generator, device=device)
            return 1 - 1 / (torch.tan(math.pi / 2 * u) + 1)
        if scheme == "sigmoid":
            # sigmoid(scale * randn), as SimpleTuner and ai-toolkit draw it: a logit-normal with mean 0, std scale.
            scheme, mean, std = "logit_normal", 0.0, s.sigmoid_scale
        else:
            mean, std = s.logit_mean, s.logit_std
        return compute_density_for_timestep_sampling(
            weighting_scheme="none" if scheme == "uniform" else scheme,
            batch_size=batch_size,
            logit_mean=mean,
            logit_std=std,
            mode_scale=s.mode_scale,
            device=device,
            generator=generator,
        )

    def image_seq_len(self, latents: torch.Tensor) -> int:
        """How many patches the transformer sees for latents [B, C, h, w] (Flux: (h/2) * (w/2))."""
        h, w = latents.shape[-2:]
        return (h // self.patch_size) * (w // self.patch_size)

    def mu(self, latents: torch.Tensor) -> float:
        """The auto-shift's mu for this batch's size, from the scheduler config's shift settings."""
        c = self.scheduler.config
        return auto_shift_mu(
            self.image_seq_len(latents),
            base_seq_len=c.get("base_image_seq_len") or DEFAULT_BASE_SEQ_LEN,
            max_seq_len=c.get("max_image_seq_len") or DEFAULT_MAX_SEQ_LEN,
            base_shift=c.get("base_shift") if c.get("base_shift") is not None else DEFAULT_BASE_SHIFT,
            max_shift=c.get("max_shift") if c.get("max_shift") is not None else DEFAULT_MAX_SHIFT,
        )

    def sigmas_for(self, u: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        """Noise levels for draws u: the scheduler's training table at (u * N), then the auto-shift."""
        n = self.num_train_timesteps
        # clamp: u can be exactly 1 (mode at u = 0, a sigmoid rounding up), which diffusers' scripts would
        # turn into an index one past the table.
        indices = (u * n).long().clamp(0, n - 1)
        sigmas = self.scheduler.sigmas.to(u.device)[indices]
        if self.settings.auto_shift:
            # FlowMatchEulerDiscreteScheduler.time_shift: exp(mu) / (exp(mu) + (1 / sigma - 1)) by default.
            sigmas = self.scheduler.time_shift(self.mu(latents), 1.0, sigmas)
        low, high = self.settings.min_sigma, self.settings.max_sigma
        if (low, high) != (0.0, 1.0):
            # objective.min_sigma / max_sigma: scaled into the range, so the drawn distribution keeps its shape
            # (a clamp would pile the draws outside it onto the ends).
            sigmas = low + (high - low) * sigmas
        return sigmas

    # -- the objective ------------------------------------------------------------------------
    def noise(self, latents: torch.Tensor, generator: torch.Generator | None) -> Noised:
        b = latents.shape[0]
        noise = torch.randn(latents.shape, generator=generator, device=latents.device, dtype=latents.dtype)
        if self.noise_offset:
            # Offset noise, drawn as the DDPM objective draws it (per image and channel).
            noise = noise + self.noise_offset * torch.randn(
                (b, latents.shape[1], 1, 1), generator=generator, device=latents.device, dtype=latents.dtype
            )
        sigmas = self.sigmas_for(self.sample_u(b, generator, latents.device), latents)
        timesteps = sigmas * self.num_train_timesteps
        s = sigmas.to(latents.dtype).reshape(b, *([1] * (latents.ndim - 1)))
        # Drawn after the sigmas, and only when on: runs without them draw exactly what they always drew.
        noise = self.extra_noise(noise, generator)
        noisy = (1.0 - s) * latents + s * self.perturbed(noise, generator)
        return Noised(noisy, timesteps, noise - latents, sigmas, latents)

    def compared(self, pred: torch.Tensor, noised: Noised) -> tuple[torch.Tensor, torch.Tensor]:
        """objective.precondition_outputs: the clean latents the velocity implies, x_t - sigma v, against the
        clean latents (diffusers' train_dreambooth_sd3.py); else the velocities."""
        if not self.settings.precondition_outputs:
            return pred, noised.target
        assert noised.sigmas is not None and noised.clean is not None, "a flow draw carries sigmas and clean latents"
        s = noised.sigmas.reshape(-1, *([1] * (pred.ndim - 1)))
        return noised.noisy.float() - s * pred.float(), noised.clean.float()

    def loss_weights(self, noised: Noised) -> torch.Tensor | None:
        if self.settings.loss_weighting == "none":
            return None
        from diffusers.training_utils import compute_loss_weighting_for_sd3

        assert noised.sigmas is not None, "a flow objective's draw carries its sigmas"
        return compute_loss_weighting_for_sd3(self.settings.loss_weighting, noised.sigmas)

    def noise_to_signal(self, noised: Noised) -> torch.Tensor:
        """sigma / (1 - sigma): x_t = (1 - sigma) x0 + sigma n has signal (1 - sigma) and noise sigma."""
        assert noised.sigmas is not None, "a flow objective's draw carries its sigmas"
        return noised.sigmas / (1.0 - noised.sigmas).clamp_min(1e-6)
