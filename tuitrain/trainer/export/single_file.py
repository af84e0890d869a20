"""A pipeline as one original-layout .safetensors checkpoint (A1111, ComfyUI, from_single_file).

The inverse of diffusers' single-file conversion: the UNet goes to
'model.diffusion_model.*' (input_blocks / middle_block / output_blocks), the VAE to
'first_stage_model.*' (down.N.block.M, mid.attn_1 with 1x1-conv q/k/v), and the text
encoders to their family's place: transformers layout under
'cond_stage_model.transformer.' (SD 1.x) or 'conditioner.embedders.0.transformer.'
(SDXL), OpenCLIP layout under 'cond_stage_model.model.' (SD 2.x) or
'conditioner.embedders.1.model.' (SDXL). Every weight must find a name: an unknown
one is an error here, not a silently incomplete file there.

SD 2.x note: the diffusers text encoder has 23 of OpenCLIP's 24 layers and no
projection (SD 2.x uses the penultimate layer), so those are not written; A1111 and
ComfyUI do not use them either.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from tuitrain.families import FAMILIES
from tuitrain.trainer.export.atomic import atomic_save_safetensors
from tuitrain.trainer.export.metadata import modelspec_architecture
from tuitrain.trainer.loading.clip import hf_to_open_clip, hf_to_transformers_layout
from tuitrain.trainer.families import family_files
from tuitrain.trainer.loading.layout import unet_to_ldm, vae_to_ldm


def to_ldm_state_dict(pipe: Any, family: str) -> dict[str, torch.Tensor]:
    """Every weight of `pipe` under its original single-file name."""
    files = family_files(family) if family in FAMILIES else None
    if files is None or not files.single_file or not files.text_encoder_prefixes:
        raise ValueError(f"no single-file layout for family {family!r}")
    state = unet_to_ldm(pipe.unet.state_dict(), pipe.unet.config)
    state.update(vae_to_ldm(pipe.vae.state_dict(), pipe.vae.config))
    encoders = [getattr(pipe, name) for name in files.text_encoder_components]
    for encoder, prefix in zip(encoders, files.text_encoder_prefixes):
        weights = encoder.state_dict()
        layout = hf_to_open_clip(weights) if prefix.endswith(".model.") else hf_to_transformers_layout(weights)
        state.update({prefix + k: v for k, v in layout.items()})
    return state


def _metadata(pipe: Any, family: str) -> dict[str, str]:
    info = FAMILIES[family]
    prediction = pipe.scheduler.config.get("prediction_type", info.prediction)
    return {
        "format": "pt",
        "modelspec.sai_model_spec": "1.0.0",
        "modelspec.architecture": modelspec_architecture(family, v_prediction=prediction == "v_prediction",
                                                         adapter=None),
        "modelspec.implementation": family_files(family).original_implementation,
        "modelspec.resolution": f"{info.default_resolution}x{info.default_resolution}",
        "modelspec.prediction_type": "v" if prediction == "v_prediction" else "epsilon",
    }


def save_single_file(pipe: Any, family: str, path: str | os.PathLike[str], dtype: torch.dtype | None = None,
                     metadata: Mapping[str, str] | None = None) -> Path:
    """Write `pipe` as one original-layout checkpoint at `path` (atomically); dtype None keeps each weight's.

    `metadata` adds to (or overrides) the modelspec header, e.g. title, date, training resolution.
    """
    return atomic_save_safetensors(_host_tensors(to_ldm_state_dict(pipe, family), dtype), path,
                                   metadata={**_metadata(pipe, family), **(metadata or {})})


def save_denoiser_file(state: Mapping[str, torch.Tensor], family: str, path: str | os.PathLike[str],
                       dtype: torch.dtype | None = None, metadata: Mapping[str, str] | None = None) -> Path:
    """Write a denoiser's state dict, already in its original layout (FLUX.1: layout.to_bfl), as one file."""
    info = FAMILIES[family]
    header = {
        "format": "pt",
        "modelspec.sai_model_spec": "1.0.0",
        "modelspec.architecture": info.modelspec_architecture,
        "modelspec.implementation": family_files(family).original_implementation,
        "modelspec.resolution": f"{info.default_resolution}x{info.default_resolution}",
    }
    return atomic_save_safetensors(_host_tensors(state, dtype), path, metadata={**header, **(metadata or {})})


def _host_tensors(state: Mapping[str, torch.Tensor], dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
    """Contiguous host copies in `dtype` (None: each keeps its own), none sharing memory (safetensors refuses that)."""
    tensors: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for key, value in state.items():
        value = value.detach().to("cpu")
        if dtype is not None and value.is_floating_point():
            value = value.to(dtype)
        value = value.contiguous()
        storage = value.untyped_storage().data_ptr()
        if storage in seen and value.numel():  # safetensors refuses tensors that share memory
            value = value.clone()
            storage = value.untyped_storage().data_ptr()
        seen.add(storage)
        tensors[key] = value
    return tensors
