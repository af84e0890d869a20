"""A stage-C prior file in the original layout (stage_c.safetensors, stage_c_lite.safetensors, ComfyUI's
model.diffusion_model.-prefixed copies) as a StableCascadePriorPipeline.

The prior comes from the file (layout.from_original, diffusers' converter); CLIP-G, its tokenizer and the
scheduler from model.config's diffusers folder, whose prior config gives the architecture (full or lite).
Built on the meta device and the file's tensors assigned in by loading/denoiser_file.py, as the other
denoiser-file loaders do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from tuitrain.trainer.families.cascade.layout import from_original
from tuitrain.trainer.loading.compat import dtype_kwargs
from tuitrain.trainer.loading.denoiser_file import filled_model, first_line
from tuitrain.trainer.loading.errors import ModelLoadError


def prior_config(folder: Path, state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """model.config's prior architecture, unless the file is the other published size: stabilityai's
    stable-cascade-prior folder describes the full prior, and its stage_c_lite.safetensors (1536 wide) takes
    the shipped lite config (and a full file with a lite folder the full one)."""
    from diffusers import StableCascadeUNet

    from tuitrain.trainer.families.cascade.files import CONFIGS

    config = dict(StableCascadeUNet.load_config(str(folder), subfolder="prior"))
    marker = state.get("clip_txt_mapper.weight")
    width = int(marker.shape[0]) if marker is not None else None
    shipped = {2048: CONFIGS / "cascade", 1536: CONFIGS / "cascade-lite"}
    if width != config.get("conditioning_dim") and width in shipped:
        config = dict(StableCascadeUNet.load_config(str(shipped[width]), subfolder="prior"))
    return config


def load_prior(path: Path, folder: Path, dtype: torch.dtype | None = None) -> Any:
    """StableCascadeUNet with the file's weights, shaped by `folder`/prior/config.json."""
    from diffusers import StableCascadeUNet
    from safetensors.torch import load_file

    try:
        state = from_original(load_file(str(path)))
    except Exception as exc:  # a fused attention tensor that does not split in three, a truncated file
        raise ModelLoadError(f"model.base: '{path}' is not a stage-C prior tuitrain reads: {first_line(exc)}") from None
    return filled_model(StableCascadeUNet, prior_config(folder, state), state, path=path, folder=folder,
                        family_words="a Stable Cascade stage-C", dtype=dtype, component="prior")


def load_denoiser_file(path: Path, folder: Path, *, vae: Any | None, dtype: torch.dtype) -> Any:
    from diffusers import StableCascadePriorPipeline

    prior = load_prior(path, folder, dtype)
    try:
        return StableCascadePriorPipeline.from_pretrained(str(folder), prior=prior, local_files_only=True,
                                                          **dtype_kwargs(dtype))
    except Exception as exc:
        raise ModelLoadError(f"model.config: cannot load the Stable Cascade components from '{folder}': "
                             f"{first_line(exc)}") from exc
