"""The stage-C prior's weights and module names between diffusers and the original Stable Cascade code.

The original StageC (Stability-AI/StableCascade, and ComfyUI, which loads its files) names every module
as diffusers' StableCascadeUNet does, except attention: the original keeps torch's nn.MultiheadAttention
under `attention.attn` (q/k/v fused in `in_proj_weight`, output `out_proj`), ComfyUI splits that into
`attention.attn.to_q/to_k/to_v` + `attention.attn.out_proj` modules, and diffusers has `attention.to_q`
... `attention.to_out.0`. The way in is diffusers' own single-file converter
(convert_stable_cascade_unet_single_file_to_diffusers); the way out is written here (diffusers converts
one way only).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

COMFY_PREFIX = "model.diffusion_model."
_ATTENTION = re.compile(r"^(.*\.attention)\.(to_q|to_k|to_v|to_out\.0)$")


def comfy_module(path: str) -> str:
    """The ComfyUI module path of the diffusers prior module at `path` (what `lora_prior_unet_` names)."""
    m = _ATTENTION.match(path)
    if not m:
        return path
    return f"{m.group(1)}.attn.{'out_proj' if m.group(2) == 'to_out.0' else m.group(2)}"


def to_original(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """diffusers StableCascadeUNet (stage C) state dict -> the original keys (q/k/v fused into in_proj)."""
    out: dict[str, torch.Tensor] = {}
    src = dict(state)
    for key in sorted(k for k in src if k.endswith(".attention.to_q.weight")):
        stem = key[: -len(".to_q.weight")]
        for suffix in ("weight", "bias"):
            out[f"{stem}.attn.in_proj_{suffix}"] = torch.cat([src.pop(f"{stem}.to_{x}.{suffix}") for x in "qkv"])
            out[f"{stem}.attn.out_proj.{suffix}"] = src.pop(f"{stem}.to_out.0.{suffix}")
    out.update(src)
    return out


def from_original(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An original-layout stage-C file's tensors (bare or under ComfyUI's model.diffusion_model.) -> diffusers'
    keys, through diffusers' converter."""
    from diffusers.loaders.single_file_utils import convert_stable_cascade_unet_single_file_to_diffusers

    bare = {k[len(COMFY_PREFIX):] if k.startswith(COMFY_PREFIX) else k: v for k, v in state.items()}
    return convert_stable_cascade_unet_single_file_to_diffusers(bare)
