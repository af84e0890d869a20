"""A FLUX.1 transformer file (BFL's layout, as ComfyUI users and community fine-tunes have it) as a pipeline.

The transformer comes from the file, converted by layout.from_bfl (widths read from the tensors);
everything else (CLIP-L, T5, VAE, tokenizers, scheduler) from model.config's diffusers folder.
The module is built on the meta device and the file's tensors are assigned in, so no second
copy of the weights is allocated for the module (a dtype other than the file's costs one copy).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from tuitrain.trainer.families.flux.layout import from_bfl
from tuitrain.trainer.loading.compat import dtype_kwargs
from tuitrain.trainer.loading.denoiser_file import filled_model, first_line
from tuitrain.trainer.loading.errors import ModelLoadError


def load_transformer(path: Path, folder: Path, dtype: torch.dtype | None = None) -> Any:
    """FluxTransformer2DModel with the file's weights; the architecture from `folder`/transformer, except the
    guidance embedding, which the file decides (schnell files have none)."""
    from diffusers import FluxTransformer2DModel
    from safetensors.torch import load_file

    field = "model.base"
    try:
        state = from_bfl(load_file(str(path)))
    except KeyError as exc:
        raise ModelLoadError(f"{field}: '{path}' is not a complete FLUX.1 transformer: it lacks {exc}") from None
    except RuntimeError as exc:  # a fused tensor of the wrong size for its block
        raise ModelLoadError(f"{field}: '{path}' is not a FLUX.1 transformer of a shape tuitrain reads: "
                             f"{first_line(exc)}") from None
    config = dict(FluxTransformer2DModel.load_config(str(folder), subfolder="transformer"))
    config["guidance_embeds"] = any(k.startswith("time_text_embed.guidance_embedder.") for k in state)
    return filled_model(FluxTransformer2DModel, config, state, path=path, folder=folder, family_words="a FLUX.1",
                        dtype=dtype)


def load_denoiser_file(path: Path, folder: Path, *, vae: Any | None, dtype: torch.dtype) -> Any:
    from diffusers import FluxPipeline

    transformer = load_transformer(path, folder, dtype)
    extra = {"vae": vae} if vae is not None else {}
    try:
        return FluxPipeline.from_pretrained(str(folder), transformer=transformer, local_files_only=True,
                                            **dtype_kwargs(dtype), **extra)
    except Exception as exc:
        raise ModelLoadError(f"model.config: cannot load the FLUX.1 components from '{folder}': "
                             f"{first_line(exc)}") from exc
