"""A PixArt-α / Σ transformer file in the original repository's layout as a pipeline.

The transformer comes from the file (layout.from_original); T5, the VAE, the tokenizer and the
scheduler from model.config's diffusers folder, whose model_index.json also says α or Σ (the
pipeline class). The architecture is the folder's transformer config, except the micro-conditions
(α 1024's resolution / aspect-ratio embedders), which the file decides. Built on the meta device
and the file's tensors assigned in, as FLUX.1's loader does, so no second copy is allocated.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from tuitrain.trainer.families.pixart.layout import from_original, uses_micro_conditions
from tuitrain.trainer.loading.compat import dtype_kwargs
from tuitrain.trainer.loading.denoiser_file import filled_model, first_line
from tuitrain.trainer.loading.errors import ModelLoadError


def load_transformer(path: Path, folder: Path, dtype: torch.dtype | None = None) -> Any:
    """PixArtTransformer2DModel with the file's weights, shaped by `folder`/transformer/config.json."""
    from diffusers import PixArtTransformer2DModel
    from safetensors.torch import load_file

    field = "model.base"
    raw = load_file(str(path))
    try:
        state = from_original(raw)
    except KeyError as exc:
        raise ModelLoadError(f"{field}: '{path}' is not a complete PixArt transformer: it lacks {exc}") from None
    except RuntimeError as exc:
        raise ModelLoadError(f"{field}: '{path}' is not a PixArt transformer of a shape tuitrain reads: "
                             f"{first_line(exc)}") from None
    config = dict(PixArtTransformer2DModel.load_config(str(folder), subfolder="transformer"))
    config["use_additional_conditions"] = uses_micro_conditions(raw)
    del raw
    return filled_model(PixArtTransformer2DModel, config, state, path=path, folder=folder, family_words="a PixArt",
                        dtype=dtype)


def load_denoiser_file(path: Path, folder: Path, *, vae: Any | None, dtype: torch.dtype) -> Any:
    import diffusers

    from tuitrain.trainer.families.pixart.files import PIXART

    transformer = load_transformer(path, folder, dtype)
    declared = json.loads((folder / "model_index.json").read_text(encoding="utf-8")).get("_class_name")
    cls = getattr(diffusers, PIXART.pipeline_class_for(None, declared))
    extra = {"vae": vae} if vae is not None else {}
    try:
        return cls.from_pretrained(str(folder), transformer=transformer, local_files_only=True, **dtype_kwargs(dtype),
                                   **extra)
    except Exception as exc:
        raise ModelLoadError(f"model.config: cannot load the PixArt components from '{folder}': {first_line(exc)}") from exc
