"""Finding and loading a base model offline: hub id, diffusers folder or single .safetensors.

    load_pipeline(model_cfg, family, config_dir=...)  model.base (+ vae, variant, prediction, config)
                                                      as the family's diffusers pipeline
    ModelLoadError                                    every mistake a user can make, named
    shipped_config_dir(family)                        the public architecture configs shipped
                                                      with tuitrain, as a diffusers-format folder

Single files load with no network: their architecture comes from model.config or
from the configs in configs/ (sources and licences in configs/README.txt).
"""

from tuitrain.trainer.loading.config_folders import shipped_config_dir
from tuitrain.trainer.loading.errors import ModelLoadError
from tuitrain.trainer.loading.pipeline import load_pipeline

__all__ = ["ModelLoadError", "load_pipeline", "shipped_config_dir"]
