"""LoRA files in diffusers/peft naming, for the families whose tools read that (FamilyFiles.lora_format = "peft").

Keys are `<component>.<module path>.lora_A.weight` / `.lora_B.weight` (`transformer.` for a DiT,
`text_encoder.` for CLIP in its original `text_model.` spelling): what diffusers' load_lora_weights
reads and what ComfyUI and Forge map for Flux and SD3. The alpha / rank scale is folded into
lora_B and no `.alpha` keys are written, so every loader applies scale 1 and computes the same
delta (diffusers, given no alpha, takes alpha = rank; diffusers refuses SD3 files with `.alpha`
keys). Written here rather than through `save_lora_weights`, which would keep peft's scale
separate in a header only diffusers reads.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tuitrain.trainer.export.kohya_lora import SAVE_DTYPES, write_with_hashes
from tuitrain.trainer.export.naming import clip_path
from tuitrain.trainer.methods.peft_layers import lora_layers


def peft_lora_state_dict(models: Mapping[str, nn.Module], denoiser_name: str, *,
                         dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """Every LoRA layer of `models` (component name -> model) under its diffusers key, scale folded in."""
    out: dict[str, torch.Tensor] = {}
    for component, model in models.items():
        for path, layer in lora_layers(model).items():
            if layer.magnitude is not None:
                raise ValueError(f"{component}.{path}: DoRA has no folded-scale file form here (lora.use_dora)")
            name = path if component == denoiser_name else clip_path(path)
            scale = layer.alpha / layer.rank
            out[f"{component}.{name}.lora_A.weight"] = layer.down.detach().to("cpu", dtype).contiguous()
            out[f"{component}.{name}.lora_B.weight"] = (layer.up.detach().float() * scale).to("cpu", dtype).contiguous()
    return out


def save_peft_lora(path: str | os.PathLike[str], models: Mapping[str, nn.Module], denoiser_name: str, *,
                   save_dtype: str, metadata: Mapping[str, str],
                   layout: Callable[..., dict[str, torch.Tensor] | None] | None = None) -> Path:
    """Write the LoRA to `path` atomically, with `metadata` plus kohya's sshs_* hashes. `layout` (the family
    adapter's lora_file_tensors) may name the tensors its own way; None from it: the diffusers names."""
    dtype = SAVE_DTYPES[save_dtype]
    tensors = layout(dict(models), denoiser_name, dtype) if layout else None
    if tensors is None:
        tensors = peft_lora_state_dict(models, denoiser_name, dtype=dtype)
    if not tensors:
        raise ValueError("no LoRA layers to save: inject_lora was not called on these models")
    return write_with_hashes(path, tensors, metadata)


def folded_lora_config(state: Mapping[str, torch.Tensor]) -> Any:
    """peft's LoraConfig for a state in this module's layout (scale folded into lora_B): its modules, per-module
    ranks, alpha = rank so that peft applies scale 1."""
    import re

    from peft import LoraConfig

    ranks = {k[: -len(".lora_A.weight")]: int(v.shape[0]) for k, v in state.items() if k.endswith(".lora_A.weight")}
    if not ranks:
        raise ValueError("no LoRA layers in the file")
    rank = max(set(ranks.values()), key=list(ranks.values()).count)
    others = {re.escape(name): r for name, r in ranks.items() if r != rank}
    return LoraConfig(r=rank, lora_alpha=rank, target_modules=sorted(ranks), rank_pattern=others,
                      alpha_pattern=dict(others))


def load_folded_lora(model: nn.Module, state: Mapping[str, torch.Tensor], adapter_name: str = "default",
                     what: str = "model") -> None:
    """Add a folded-scale LoRA `state` (keys relative to `model`) as peft adapter `adapter_name`: the loader a
    diffusers user writes for a family diffusers has none for (PixArt, Stable Cascade's prior)."""
    from peft import inject_adapter_in_model, set_peft_model_state_dict

    inject_adapter_in_model(folded_lora_config(state), model, adapter_name=adapter_name)
    result = set_peft_model_state_dict(model, dict(state), adapter_name=adapter_name)
    unexpected = getattr(result, "unexpected_keys", None) or []
    if unexpected:
        raise ValueError(f"the LoRA file does not fit the {what}: unexpected {unexpected[:3]}")
