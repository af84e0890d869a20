"""Stable Cascade stage-C LoRA files in the names ComfyUI loads, and a loader for them.

ComfyUI maps `lora_prior_unet_<its prior module path, . -> _>` onto stage C (comfy/lora.py), with kohya's
tensors: `.lora_down.weight` [r, in], `.lora_up.weight` [out, r] and a float `.alpha` (scale = alpha / r).
Its module paths are the original code's, which differ from diffusers' only in attention
(layout.comfy_module: `attention.to_q` -> `attention.attn.to_q`, `attention.to_out.0` ->
`attention.attn.out_proj`). diffusers has no LoRA loader for Stable Cascade (no LoraLoaderMixin on
its prior pipeline), so load_lora_weights here is what a diffusers user writes: the file's names
mapped back onto the prior's modules, put in with peft. A name that maps onto no module is an error,
never skipped, so the tests' round trip proves every key lands.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from tuitrain.trainer.export.peft_lora import load_folded_lora
from tuitrain.trainer.families.cascade.layout import comfy_module

PREFIX = "lora_prior_unet"
_SUFFIXES = ("lora_down.weight", "lora_up.weight", "alpha")


def kohya_module_name(path: str) -> str:
    """`lora_prior_unet_<ComfyUI path with _>` for the diffusers prior module at `path`."""
    return f"{PREFIX}_{comfy_module(path).replace('.', '_')}"


def module_names(prior: nn.Module) -> dict[str, str]:
    """Every adaptable layer (Linear, Conv2d) of the prior: file name -> diffusers module path."""
    names: dict[str, str] = {}
    for path, module in prior.named_modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)) and "lora_" not in path:
            name = kohya_module_name(path)
            if name in names:
                raise ValueError(f"two prior modules map to {name!r}: {names[name]!r} and {path!r}")
            names[name] = path
    return names


def cascade_lora_state_dict(models: Mapping[str, nn.Module], denoiser_name: str, *,
                            dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """The prior's LoRA layers as kohya tensors under ComfyUI's names (the adapter's lora_file_tensors)."""
    from tuitrain.trainer.methods.peft_layers import lora_layers

    out: dict[str, torch.Tensor] = {}
    for component, model in models.items():
        layers = lora_layers(model)
        if component != denoiser_name:
            if layers:
                raise ValueError(f"{component}: Stable Cascade LoRA files hold the prior only")
            continue
        for path, layer in layers.items():
            if layer.magnitude is not None:
                raise ValueError(f"{path}: DoRA has no Stable Cascade file form here (lora.use_dora)")
            name = kohya_module_name(path)
            out[f"{name}.lora_down.weight"] = layer.down.detach().to("cpu", dtype).contiguous()
            out[f"{name}.lora_up.weight"] = layer.up.detach().to("cpu", dtype).contiguous()
            out[f"{name}.alpha"] = torch.tensor(float(layer.alpha), dtype=torch.float32)
    return out


def peft_state(prior: nn.Module, tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A file's tensors as peft's `<diffusers path>.lora_A/B.weight` with alpha / rank folded into B; ValueError
    naming the first key that maps onto no module of `prior`."""
    names = module_names(prior)
    grouped: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        suffix = next((s for s in _SUFFIXES if key.endswith("." + s)), None)
        name = key[: -len(suffix) - 1] if suffix else key
        if suffix is None or name not in names:
            raise ValueError(f"'{key}' names no module of this Stable Cascade prior")
        grouped.setdefault(name, {})[suffix] = value
    out: dict[str, torch.Tensor] = {}
    for name, parts in grouped.items():
        down, up = parts["lora_down.weight"], parts["lora_up.weight"]
        rank = down.shape[0]
        alpha = float(parts["alpha"]) if "alpha" in parts else float(rank)  # ComfyUI: no alpha means scale 1
        out[f"{names[name]}.lora_A.weight"] = down.float()
        out[f"{names[name]}.lora_B.weight"] = up.float() * (alpha / rank)
    return out


def load_lora_into(prior: nn.Module, path: str | os.PathLike[str], adapter_name: str = "default") -> None:
    """Add the file's LoRA to `prior` (a StableCascadeUNet) as peft adapter `adapter_name`."""
    from safetensors.torch import load_file

    load_folded_lora(prior, peft_state(prior, load_file(str(path))), adapter_name, "prior")


def load_lora_weights(pipeline: Any, path: str | os.PathLike[str]) -> None:
    """The pipeline-level call diffusers' other families have: the LoRA goes into pipeline.prior."""
    load_lora_into(pipeline.prior, path)
