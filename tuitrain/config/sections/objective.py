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
    zero_terminal_snr: bool = option(
        False,
        "DDPM: rescale the noise schedule so the last timestep is pure noise (Lin et al. 2023): the model learns "
        "truly dark and bright images. Needs model.prediction = v_prediction; the model must then be sampled "
        "with a zero-terminal-SNR schedule too.",
        objective="ddpm",
    )

    @model_validator(mode="after")
    def _one_kind_of_shift(self) -> ObjectiveSection:
        if self.auto_shift and self.shift is not None:
            raise ValueError(
                f"shift: leave it unset with auto_shift = true (the shift then follows each image's size), "
                f"got {self.shift:g}"
            )
        return self
