"""Training objectives: DDPM (epsilon, v-prediction) and flow matching, behind one contract.

The loop calls `build_objective(...)` once and then `objective.noise(latents, generator)` and
`objective.loss_weights(noised)` per batch; base.py says why each piece is there.
"""

from tuitrain.trainer.objectives.base import (
    Noised,
    Objective,
    ObjectiveOptions,
    ObjectiveSettings,
    build_objective,
)

__all__ = ["Noised", "Objective", "ObjectiveOptions", "ObjectiveSettings", "build_objective"]
