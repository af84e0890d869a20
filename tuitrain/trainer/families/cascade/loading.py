"""A stage-C prior file in the original layout (stage_c.safetensors, stage_c_lite.safetensors, ComfyUI's
model.diffusion_model.-prefixed copies) as a StableCascadePriorPipeline.

The prior comes from the file (layout.from_original, diffusers' converter); CLIP-G, its tokenizer and the
scheduler from model.config's diffusers folder, whose prior config gives the architecture (full or lite).
Built on the meta device and the file's tensors assigned in, as the other denoiser-file loaders do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from tuitrain.trainer.families.cascade.layout import from_original
from tuitrain.trainer.loading.compat import dtype_kwargs
from tuitrain.trainer.loading.errors import ModelLoadError


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


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
    from accelerate import init_empty_weights
    from diffusers import StableCascadeUNet
    from safetensors.torch import load_file

    field = "model.base"
    try:
        state = from_original(load_file(str(path)))
    except Exception as exc:  # a fused attention tensor that does not split in three, a truncated file
        raise ModelLoadError(f"{field}: '{path}' is not a stage-C prior tuitrain reads: {_reason(exc)}") from None
    config = prior_config(folder, state)
    with init_empty_weights():
        prior = StableCascadeUNet.from_config(config)
    expected = prior.state_dict()
    missing = sorted(set(expected) - set(state))
    wrong = sorted(k for k in set(expected) & set(state) if tuple(expected[k].shape) != tuple(state[k].shape))
    extra = sorted(set(state) - set(expected))
    if missing or wrong or extra:
        first = (missing or wrong or extra)[0]
        detail = "lacks" if missing else (f"has {list(state[first].shape)} for" if wrong else "has an extra")
        raise ModelLoadError(
            f"{field}: '{path}' does not fit the prior in '{folder / 'prior'}': the file {detail} '{first}' "
            f"({len(missing)} missing, {len(wrong)} of another shape, {len(extra)} extra); is model.config a stage C "
            "of the same size (full or lite)?"
        )
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    prior.load_state_dict(state, strict=True, assign=True)
    return prior


def load_denoiser_file(path: Path, folder: Path, *, vae: Any | None, dtype: torch.dtype) -> Any:
    from diffusers import StableCascadePriorPipeline

    prior = load_prior(path, folder, dtype)
    try:
        return StableCascadePriorPipeline.from_pretrained(str(folder), prior=prior, local_files_only=True,
                                                          **dtype_kwargs(dtype))
    except Exception as exc:
        raise ModelLoadError(f"model.config: cannot load the Stable Cascade components from '{folder}': "
                             f"{_reason(exc)}") from exc
