"""An SD3 / SD3.5 single file in Stability AI's layout as a pipeline: the transformer alone (sd3.5_large.safetensors)
or the all-in-one kind (sd3_medium_incl_clips*.safetensors: text encoders under text_encoders.*, the VAE under
first_stage_model.).

diffusers' own single-file loaders convert every part the file holds (SD3Transformer2DModel and
StableDiffusion3Pipeline .from_single_file, with model.config's folder as the architecture, so nothing
downloads); each component the file lacks (T5 in most all-in-one files, everything but the transformer
in the others) comes from that folder, as do the tokenizers and the scheduler.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from tuitrain.trainer.loading.compat import dtype_kwargs
from tuitrain.trainer.loading.errors import ModelLoadError

# Where an all-in-one file keeps each component (diffusers' single_file_utils reads these prefixes).
FILE_PREFIXES = {"text_encoder": "text_encoders.clip_l.", "text_encoder_2": "text_encoders.clip_g.",
                 "text_encoder_3": "text_encoders.t5xxl.", "vae": "first_stage_model."}


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _keys(path: Path) -> list[str]:
    from safetensors import safe_open

    with safe_open(str(path), "pt") as handle:
        return list(handle.keys())


def load_denoiser_file(path: Path, folder: Path, *, vae: Any | None, dtype: torch.dtype) -> Any:
    import diffusers
    from diffusers import SD3Transformer2DModel, StableDiffusion3Pipeline

    try:
        transformer = SD3Transformer2DModel.from_single_file(str(path), config=str(folder), subfolder="transformer",
                                                             local_files_only=True, **dtype_kwargs(dtype))
    except Exception as exc:
        raise ModelLoadError(f"model.base: '{path}' could not be loaded as the SD3 transformer of "
                             f"'{folder / 'transformer'}': {_reason(exc)}") from exc
    keys = _keys(path)
    in_file = {name for name, prefix in FILE_PREFIXES.items() if any(k.startswith(prefix) for k in keys)}
    if vae is not None:
        in_file.discard("vae")
    try:
        if not in_file:
            extra = {"vae": vae} if vae is not None else {}
            return StableDiffusion3Pipeline.from_pretrained(str(folder), transformer=transformer, local_files_only=True,
                                                            **dtype_kwargs(dtype), **extra)
        index = StableDiffusion3Pipeline.load_config(str(folder))
        given: dict[str, Any] = {"transformer": transformer}
        for name in FILE_PREFIXES:
            if name == "vae" and vae is not None:
                given["vae"] = vae
            elif name not in in_file:
                library, cls = index[name]
                module = diffusers if library == "diffusers" else __import__(library)
                given[name] = getattr(module, cls).from_pretrained(str(folder), subfolder=name, local_files_only=True,
                                                                   **dtype_kwargs(dtype))
        return StableDiffusion3Pipeline.from_single_file(str(path), config=str(folder), local_files_only=True,
                                                         **dtype_kwargs(dtype), **given)
    except Exception as exc:
        raise ModelLoadError(f"model.config: cannot load the SD3 components from '{folder}' (with '{path.name}'): "
                             f"{_reason(exc)}") from exc
