"""[evaluation]: the eval loss, a score of the weights at fixed noise that moves only when they do."""

from __future__ import annotations

from tuitrain.config.fields import Section, option
from tuitrain.config.sections.common import MAX_STEPS


class EvaluationSection(Section):
    """When and how the held-out images (role = 'validation' concepts, data.validation_split) are scored."""

    group = "saving"

    at_saves: bool = option(
        True, "Score the held-out images at every save (the eval loss beside each save). Needs a held-out set: a "
        "role = 'validation' concept or data.validation_split > 0; without one nothing is scored.",
    )
    every_steps: int = option(0, "Also score them every N steps (0: only at saves).", ge=0, le=MAX_STEPS)
    draws: int = option(
        4, "Noise draws per image: each image is scored at this many fixed (noise, timestep) pairs, the same at "
        "every evaluation. More: a smoother number, a slower evaluation.", ge=1, le=64,
    )
    train_images: int = option(
        4, "Training images scored the same way beside the held-out ones (a fixed subset): when the two curves "
        "part, the model is learning its training images rather than the concept. 0: none.", ge=0, le=256,
    )
