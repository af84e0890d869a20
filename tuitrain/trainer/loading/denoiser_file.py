"""A denoiser file (one family's original transformer layout) poured into an empty diffusers model.

Shared by the family homes whose denoiser ships as its own file (FLUX.1's BFL layout, PixArt's original
one, the Stable Cascade and Würstchen priors): each converts the file's names to diffusers' (its layout.py)
and decides what the file says about the architecture; the module is then built on the meta device and the tensors assigned in, so no second
copy of the weights is allocated, and a file that does not fit model.config's architecture is one line
naming the first tensor that is missing, misshapen or extra.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from tuitrain.trainer.loading.errors import ModelLoadError


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def filled_model(model_class: Any, config: Mapping[str, Any], state: dict[str, torch.Tensor], *, path: Path,
                 folder: Path, family_words: str, dtype: torch.dtype | None, component: str = "transformer") -> Any:
    """`model_class(**config)` holding exactly `state` (cast to `dtype` when given). `component`: the pipeline
    attribute (and model.config subfolder) the denoiser is, as the misfit message names it ("prior" for the
    Cascade and Würstchen priors)."""
    from accelerate import init_empty_weights

    with init_empty_weights():
        model = model_class.from_config(dict(config))
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    wrong = sorted(k for k in set(expected) & set(state) if tuple(expected[k].shape) != tuple(state[k].shape))
    extra = sorted(set(state) - set(expected))
    if missing or wrong or extra:
        first = (missing or wrong or extra)[0]
        detail = "lacks" if missing else (f"has {list(state[first].shape)} for" if wrong else "has an extra")
        raise ModelLoadError(
            f"model.base: '{path}' does not fit the {component} in '{folder / component}': the file {detail} "
            f"'{first}' ({len(missing)} missing, {len(wrong)} of another shape, {len(extra)} extra); is "
            f"model.config {family_words} model of the same architecture?"
        )
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    model.load_state_dict(state, strict=True, assign=True)
    return model
