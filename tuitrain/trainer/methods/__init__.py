"""Training methods: which parameters train and how they are saved. Orthogonal to families.

One registry, keyed by training.method; a new method is one module and one entry.
"""

from __future__ import annotations

from importlib import import_module

from tuitrain.config import Config
from tuitrain.trainer.families.base import FamilyAdapter, ModelParts
from tuitrain.trainer.methods.base import SaveRequest, TrainingMethod

# training.method -> "module:class", imported on use (each pulls in its own libraries).
METHODS: dict[str, str] = {
    "lora": "tuitrain.trainer.methods.lora:LoraMethod",
    "embedding": "tuitrain.trainer.methods.embedding:EmbeddingMethod",
    "finetune": "tuitrain.trainer.methods.finetune:FinetuneMethod",
}


class MethodUnavailable(RuntimeError):
    """training.method names a method this version cannot train."""


def method_class(config: Config) -> type[TrainingMethod]:
    """The class of the configured method (its module imported on use)."""
    name = config.training.method
    if name not in METHODS:
        raise MethodUnavailable(
            f"training.method: {name!r} is not available in this version ({', '.join(METHODS)} are)"
        )
    module, _, cls = METHODS[name].partition(":")
    return getattr(import_module(module), cls)


def build_method(config: Config, parts: ModelParts, adapter: FamilyAdapter) -> TrainingMethod:
    """The configured method, set up on `parts` (adapters injected, trainable weights marked)."""
    return method_class(config)(config, parts, adapter)


__all__ = ["METHODS", "MethodUnavailable", "SaveRequest", "TrainingMethod", "build_method", "method_class"]
