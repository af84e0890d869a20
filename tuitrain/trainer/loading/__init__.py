"""Finding and loading a base model offline: hub id, diffusers folder or single .safetensors.

    load_pipeline(model_cfg, family, config_dir=...)  model.base (+ vae, variant, prediction, config)
                                                      as the family's diffusers pipeline
    ModelLoadError                                    every mistake a user can make, named
    shipped_config_dir(family)                        the public architecture configs shipped
                                                      with tuitrain, as a diffusers-format folder
    preflight.inspect_base(...)                       the same checks from headers and configs alone,
                                                      torch-free: what `tuitrain check` runs

Single files load with no network: their architecture comes from model.config or
from the configs in configs/ (sources and licences in configs/README.txt).

load_pipeline is imported on first use (PEP 562), so `tuitrain check` can import the
torch-free modules here (header, errors, preflight, config_folders) without torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tuitrain.trainer.loading.config_folders import shipped_config_dir
from tuitrain.trainer.loading.errors import ModelLoadError

if TYPE_CHECKING:
    from tuitrain.trainer.loading.pipeline import load_pipeline

__all__ = ["ModelLoadError", "load_pipeline", "shipped_config_dir"]


def __getattr__(name: str) -> Any:
    if name == "load_pipeline":
        from tuitrain.trainer.loading.pipeline import load_pipeline

        return load_pipeline
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
