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
    def zero_terminal_snr(self) -> bool: ...


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
    zero_terminal_snr: bool = False


class Objective(ABC):
    """One training objective: how noise is added, what the denoiser learns, how samples weigh."""

    prediction: str  # "epsilon" | "v_prediction" | "flow"
    scheduler: Any  # the diffusers scheduler whose noise schedule this objective trains with

    @abstractmethod
    def noise(self, latents: torch.Tensor, generator: torch.Generator | None) -> Noised:
        """Draw noise and timesteps for a batch of clean latents [B, C, h, w]."""

    @abstractmethod
    def loss_weights(self, noised: Noised) -> torch.Tensor | None:
        """Per-sample loss weights [B] for a draw of `noise`; None when every sample weighs 1."""
