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
from tuitrain.trainer.loading.errors import ModelLoadError


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def load_transformer(path: Path, folder: Path, dtype: torch.dtype | None = None) -> Any:
    """PixArtTransformer2DModel with the file's weights, shaped by `folder`/transformer/config.json."""
    from accelerate import init_empty_weights
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
                             f"{_reason(exc)}") from None
    config = dict(PixArtTransformer2DModel.load_config(str(folder), subfolder="transformer"))
    config["use_additional_conditions"] = uses_micro_conditions(raw)
    del raw
    with init_empty_weights():
        transformer = PixArtTransformer2DModel.from_config(config)
    expected = transformer.state_dict()
    missing = sorted(set(expected) - set(state))
    wrong = sorted(k for k in set(expected) & set(state) if tuple(expected[k].shape) != tuple(state[k].shape))
    extra = sorted(set(state) - set(expected))
    if missing or wrong or extra:
        first = (missing or wrong or extra)[0]
        detail = "lacks" if missing else (f"has {list(state[first].shape)} for" if wrong else "has an extra")
        raise ModelLoadError(
            f"{field}: '{path}' does not fit the transformer in '{folder / 'transformer'}': the file {detail} "
            f"'{first}' ({len(missing)} missing, {len(wrong)} of another shape, {len(extra)} extra); is model.config "
            "a PixArt model of the same size?"
        )
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    transformer.load_state_dict(state, strict=True, assign=True)
    return transformer


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
        raise ModelLoadError(f"model.config: cannot load the PixArt components from '{folder}': {_reason(exc)}") from exc
