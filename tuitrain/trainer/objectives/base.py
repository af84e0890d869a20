"""The contract between the training loop and a training objective.

An objective turns clean latents into what one training step needs: the denoiser's input,
the timesteps it is called with, the target its output is compared with, and optional
per-sample loss weights. The loop knows nothing else about it, so DDPM (epsilon / v) and
flow matching (rectified flow) are interchangeable, and a family picks one by its
registry entry (`FamilyInfo.objective`).

Every random draw comes from the torch.Generator the loop passes in (seeded per batch), so
a resumed run draws the same noise and timesteps as the run it continues.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Protocol

import torch



@dataclass
class Noised:
    """What one batch's objective draw gives the loop."""

    noisy: torch.Tensor  # the denoiser's input latents, same shape as the clean latents
    # What the denoiser is called with: DDPM integer timesteps in [0, num_train_timesteps);
    # flow: sigma * num_train_timesteps (floats), as diffusers' Flux / SD3 training scripts pass them.
    timesteps: torch.Tensor
    target: torch.Tensor  # what the denoiser's output is compared with
    sigmas: torch.Tensor | None = None  # flow: the per-sample noise level in [0, 1], shape [B]
    clean: torch.Tensor | None = None  # flow: the clean latents (objective.precondition_outputs compares with them)


class ObjectiveOptions(Protocol):
    """The [objective] settings an objective reads.

    The config's ObjectiveSection has them, and so has ObjectiveSettings (plain values), so a
    family or a test builds an objective without a whole Config.
    """

    @property
    def timestep_sampling(self) -> str: ...
    @property
    def logit_mean(self) -> float: ...
    @property
    def logit_std(self) -> float: ...
    @property
    def mode_scale(self) -> float: ...
    @property
    def sigmoid_scale(self) -> float: ...
    @property
    def shift(self) -> float | None: ...
    @property
    def auto_shift(self) -> bool: ...
    @property
    def loss_weighting(self) -> str: ...
    @property
    def precondition_outputs(self) -> bool: ...
    @property
    def zero_terminal_snr(self) -> bool: ...
    @property
    def loss_type(self) -> str: ...
    @property
    def huber_schedule(self) -> str: ...
    @property
    def huber_c(self) -> float: ...
    @property
    def debiased_estimation(self) -> bool: ...
    @property
    def multires_noise_iterations(self) -> int: ...
    @property
    def multires_noise_discount(self) -> float: ...
    @property
    def input_perturbation(self) -> float: ...
    @property
    def min_timestep(self) -> int: ...
    @property
    def max_timestep(self) -> int | None: ...
    @property
    def min_sigma(self) -> float: ...
    @property
    def max_sigma(self) -> float: ...


@dataclass(frozen=True)
class ObjectiveSettings:
    """[objective] as plain values; the defaults are the schema's (a test keeps them equal)."""

    timestep_sampling: str = "logit_normal"
    logit_mean: float = 0.0
    logit_std: float = 1.0
    mode_scale: float = 1.29
    sigmoid_scale: float = 1.0
    shift: float | None = None  # None: the base model's scheduler config decides (FlowObjective says how)
    auto_shift: bool = False
    loss_weighting: str = "none"
    precondition_outputs: bool = False
    zero_terminal_snr: bool = False
    loss_type: str = "l2"
    huber_schedule: str = "snr"
    huber_c: float = 0.1
    debiased_estimation: bool = False
    multires_noise_iterations: int = 0
    multires_noise_discount: float = 0.3
    input_perturbation: float = 0.0
    min_timestep: int = 0
    max_timestep: int | None = None
    min_sigma: float = 0.0
    max_sigma: float = 1.0


class Objective(ABC):
    """One training objective: how noise is added, what the denoiser learns, how samples weigh."""

    prediction: str  # "epsilon" | "v_prediction" | "flow"
    scheduler: Any  # the diffusers scheduler whose noise schedule this objective trains with
    settings: ObjectiveOptions
    num_train_timesteps: int

    @abstractmethod
    def noise(self, latents: torch.Tensor, generator: torch.Generator | None) -> Noised:
        """Draw noise and timesteps for a batch of clean latents [B, C, h, w]."""

    @abstractmethod
    def loss_weights(self, noised: Noised) -> torch.Tensor | None:
        """Per-sample loss weights [B] for a draw of `noise`; None when every sample weighs 1."""

    @abstractmethod
    def noise_to_signal(self, noised: Noised) -> torch.Tensor:
        """Each sample's noise-to-signal ratio [B] (1 / sqrt(SNR)): the scheduled Huber delta reads it."""

    def huber_delta(self, noised: Noised) -> torch.Tensor:
        """The pseudo-Huber delta of each sample [B] (objective.huber_schedule), as kohya's sd-scripts schedule it.

        exponential: exp(-a t) with a = -ln(huber_c) / N, from 1 at t = 0 to huber_c at t = N;
        snr: (1 - c) / (1 + noise-to-signal)^2 + c, near 1 at low noise and c at high noise.
        """
        s = self.settings
        t = noised.timesteps.float()
        if s.huber_schedule == "constant":
            return torch.full_like(t, s.huber_c)
        if s.huber_schedule == "exponential":
            return torch.exp(math.log(s.huber_c) / self.num_train_timesteps * t)
        ratio = self.noise_to_signal(noised).float()
        return (1 - s.huber_c) / (1 + ratio) ** 2 + s.huber_c

    def extra_noise(self, noise: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """objective.multires_noise_iterations: the drawn noise with pyramid noise added (no draw when off)."""
        s = self.settings
        if not s.multires_noise_iterations:
            return noise
        from tuitrain.trainer.objectives.noise import pyramid_noise

        return pyramid_noise(noise, generator, s.multires_noise_iterations, s.multires_noise_discount)

    def perturbed(self, noise: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """objective.input_perturbation: the noise the input is made with (the target keeps `noise`)."""
        gamma = self.settings.input_perturbation
        if not gamma:
            return noise
        fresh = torch.randn(noise.shape, generator=generator, device=noise.device, dtype=noise.dtype)
        return noise + gamma * fresh

    def per_sample_loss(self, pred: torch.Tensor, noised: Noised, loss_masks: list[torch.Tensor | None],
                        unmasked_weight: float) -> torch.Tensor:
        """The loss of each sample [B] (objective.loss_type), weighed within by its loss mask."""
        from tuitrain.trainer.losses import per_sample_loss

        kind = self.settings.loss_type
        delta = self.huber_delta(noised) if kind in ("huber", "smooth_l1") else None
        pred, target = self.compared(pred, noised)
        return per_sample_loss(pred, target, loss_masks, unmasked_weight, kind, delta)

    def compared(self, pred: torch.Tensor, noised: Noised) -> tuple[torch.Tensor, torch.Tensor]:
        """What the loss compares: the prediction and the target (an objective may compare other forms)."""
        return pred, noised.target
