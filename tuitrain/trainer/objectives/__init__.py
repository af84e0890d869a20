"""Training objectives: DDPM (epsilon, v-prediction) and flow matching, behind one contract.

The loop calls `build_objective(...)` once and then `objective.noise(latents, generator)` and
`objective.loss_weights(noised)` per batch; base.py says why each piece is there.
build_objective lives here, above the objectives it picks from, so base.py imports none of them
(no import cycle).
"""

from __future__ import annotations

from typing import Any

from tuitrain.trainer.errors import TrainingError
from tuitrain.trainer.objectives.base import Noised, Objective, ObjectiveOptions, ObjectiveSettings
from tuitrain.trainer.objectives.continuous import ContinuousDDPMObjective, is_continuous_schedule
from tuitrain.trainer.objectives.ddpm import DDPMObjective
from tuitrain.trainer.objectives.flow import FlowObjective

__all__ = ["Noised", "Objective", "ObjectiveOptions", "ObjectiveSettings", "build_objective"]


def build_objective(
    kind: str,
    scheduler_config: dict[str, Any],
    settings: ObjectiveOptions | None = None,
    prediction: str = "auto",
    noise_offset: float = 0.0,
    min_snr_gamma: float = 0.0,
    patch_size: int = 2,
) -> Objective:
    """The objective a family trains with.

    kind: the family's `FamilyInfo.objective` ("ddpm" or "flow").
    scheduler_config: the base model's scheduler config (`pipeline.scheduler.config`): its
        noise schedule (DDPM betas) or its shift settings (flow: base_shift, max_shift, ...).
    settings: the config's [objective] section (defaults when None).
    prediction: model.prediction; "auto" reads the scheduler config (DDPM) or means "flow".
    noise_offset, min_snr_gamma: training.noise_offset and training.min_snr_gamma.
    patch_size: flow auto-shift: the transformer's patch side in latents (Flux packs 2x2), which
        turns a latent's size into the image sequence length the shift is chosen from.

    Raises TrainingError for combinations that cannot train (a user-facing message).
    """
    settings = settings or ObjectiveSettings()
    if kind == "ddpm":
        if prediction == "flow":
            raise TrainingError("model.prediction: this family trains with DDPM (epsilon or v_prediction), not 'flow'")
        if is_continuous_schedule(scheduler_config):  # Würstchen / Stable Cascade: t in [0, 1], no beta table
            return ContinuousDDPMObjective(scheduler_config, prediction, settings, noise_offset, min_snr_gamma)
        return DDPMObjective(scheduler_config, prediction, settings, noise_offset, min_snr_gamma)
    if kind == "flow":
        if prediction not in ("auto", "flow"):
            raise TrainingError(
                f"model.prediction: this family trains with flow matching ('flow' or 'auto'), not {prediction!r}"
            )
        if min_snr_gamma:
            raise TrainingError(
                "training.min_snr_gamma: min-SNR weighting is for DDPM families; flow matching weighs samples "
                "with objective.loss_weighting (set min_snr_gamma to 0)"
            )
        return FlowObjective(scheduler_config, settings, noise_offset, patch_size)
    raise ValueError(f"unknown objective kind {kind!r} (expected 'ddpm' or 'flow')")
