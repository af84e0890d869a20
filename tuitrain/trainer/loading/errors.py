"""The one error a user can cause while loading a model."""

from __future__ import annotations


class ModelLoadError(Exception):
    """A base model, VAE or config folder that cannot be loaded.

    The message is for the user: it names the config key (model.base, model.vae,
    model.config) and the file, and says what to change. Nothing deeper than this
    should reach them for a mistake they can fix.
    """
