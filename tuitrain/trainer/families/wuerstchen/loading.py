"""A Würstchen v2 prior file (the published prior/diffusion_pytorch_model.safetensors, or a fine-tune's) as a
WuerstchenPriorPipeline.

The file holds the prior alone, in diffusers' own names (warp-ai converted the original checkpoint once, into
diffusers' layout, and published nothing else). CLIP-bigG, its tokenizer and the scheduler come from
model.config's diffusers folder, whose prior/config.json gives the architecture (the file alone cannot: no
published file holds CLIP-bigG). Built on the meta device and the tensors assigned in (loading/denoiser_file.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from tuitrain.trainer.families.wuerstchen.compat import restore_wuerstchen_package, unverified_components
from tuitrain.trainer.loading.compat import dtype_kwargs
from tuitrain.trainer.loading.denoiser_file import filled_model, first_line
from tuitrain.trainer.loading.errors import ModelLoadError


def load_prior(path: Path, folder: Path, dtype: torch.dtype | None = None) -> Any:
    """WuerstchenPrior holding the file's weights, shaped by `folder`/prior/config.json."""
    from diffusers.pipelines.deprecated.wuerstchen import WuerstchenPrior
    from safetensors.torch import load_file

    try:
        state = load_file(str(path))
    except Exception as exc:  # a truncated file
        raise ModelLoadError(f"model.base: '{path}' is not a Würstchen prior tuitrain reads: "
                             f"{first_line(exc)}") from None
    config = dict(WuerstchenPrior.load_config(str(folder), subfolder="prior"))
    return filled_model(WuerstchenPrior, config, state, path=path, folder=folder, family_words="a Würstchen v2",
                        dtype=dtype, component="prior")


def load_denoiser_file(path: Path, folder: Path, *, vae: Any | None, dtype: torch.dtype) -> Any:
    from diffusers import WuerstchenPriorPipeline

    restore_wuerstchen_package()
    prior = load_prior(path, folder, dtype)
    try:
        with unverified_components():
            return WuerstchenPriorPipeline.from_pretrained(str(folder), prior=prior, local_files_only=True,
                                                           **dtype_kwargs(dtype))
    except Exception as exc:
        raise ModelLoadError(f"model.config: cannot load the Würstchen components from '{folder}': "
                             f"{first_line(exc)}") from exc
