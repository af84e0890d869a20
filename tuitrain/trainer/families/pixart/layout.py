"""PixArt-α / Σ transformer weights between diffusers' names and the original repository's.

The original layout (PixArt-alpha/PixArt-alpha and PixArt-sigma, the released .pth checkpoints) fuses
self-attention q/k/v into `attn.qkv` and cross-attention k/v into `cross_attn.kv_linear`, and names
the embedders after DiT. The mapping is the one diffusers' scripts/convert_pixart_{alpha,sigma}_to_diffusers.py
apply (Apache-2.0), written out both ways here because diffusers ships no PixArt single-file loader.
Block counts and widths come from the tensors, so any depth converts (the tiny test model's too).
Keys the diffusers model has no place for are dropped on the way in: `y_embedder.y_embedding` (the
learned empty caption, used only for the original trainer's caption dropout) and `pos_embed` (a fixed
sin-cos table diffusers recomputes).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

COMFY_PREFIX = "model.diffusion_model."
IGNORED = ("y_embedder.y_embedding", "pos_embed")

# Renamed one to one (diffusers name -> original name), outside the blocks, without .weight/.bias.
_TOP = {
    "pos_embed.proj": "x_embedder.proj",
    "caption_projection.linear_1": "y_embedder.y_proj.fc1",
    "caption_projection.linear_2": "y_embedder.y_proj.fc2",
    "adaln_single.emb.timestep_embedder.linear_1": "t_embedder.mlp.0",
    "adaln_single.emb.timestep_embedder.linear_2": "t_embedder.mlp.2",
    "adaln_single.emb.resolution_embedder.linear_1": "csize_embedder.mlp.0",  # α's micro-conditions
    "adaln_single.emb.resolution_embedder.linear_2": "csize_embedder.mlp.2",
    "adaln_single.emb.aspect_ratio_embedder.linear_1": "ar_embedder.mlp.0",
    "adaln_single.emb.aspect_ratio_embedder.linear_2": "ar_embedder.mlp.2",
    "adaln_single.linear": "t_block.1",
    "proj_out": "final_layer.linear",
}
# Inside block N (transformer_blocks.N. <-> blocks.N.), one to one.
_BLOCK = {
    "attn1.to_out.0": "attn.proj",
    "attn1.q_norm": "attn.q_norm",
    "attn1.k_norm": "attn.k_norm",
    "attn2.to_q": "cross_attn.q_linear",
    "attn2.to_out.0": "cross_attn.proj",
    "ff.net.0.proj": "mlp.fc1",
    "ff.net.2": "mlp.fc2",
}
_SUFFIXES = (".weight", ".bias")


def _block_indices(keys: object, prefix: str) -> list[int]:
    pattern = re.compile(rf"^{re.escape(prefix)}(\d+)\.")
    return sorted({int(m.group(1)) for k in keys if (m := pattern.match(k))})  # type: ignore[union-attr]


def to_original(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """diffusers PixArtTransformer2DModel state dict -> the original repository's keys (q/k/v fused)."""
    src = dict(state)
    out: dict[str, torch.Tensor] = {}
    for new, old in _TOP.items():
        for suffix in _SUFFIXES:
            if new + suffix in src:
                out[old + suffix] = src.pop(new + suffix)
    out["final_layer.scale_shift_table"] = src.pop("scale_shift_table")
    for n in _block_indices(src, "transformer_blocks."):
        d, o = f"transformer_blocks.{n}.", f"blocks.{n}."
        out[o + "scale_shift_table"] = src.pop(d + "scale_shift_table")
        for suffix in _SUFFIXES:
            out[o + "attn.qkv" + suffix] = torch.cat([src.pop(f"{d}attn1.to_{x}{suffix}") for x in "qkv"])
            out[o + "cross_attn.kv_linear" + suffix] = torch.cat([src.pop(f"{d}attn2.to_{x}{suffix}") for x in "kv"])
            for new, old in _BLOCK.items():
                if d + new + suffix in src:
                    out[o + old + suffix] = src.pop(d + new + suffix)
    if src:
        raise KeyError(f"no original PixArt name for {sorted(src)[:3]}")
    return out


def from_original(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An original-layout PixArt checkpoint's tensors (bare or under model.diffusion_model.) -> diffusers' keys.

    KeyError names a missing tensor; a fused tensor that does not split evenly raises RuntimeError."""
    src = {k[len(COMFY_PREFIX):] if k.startswith(COMFY_PREFIX) else k: v for k, v in state.items()}
    for key in IGNORED:
        src.pop(key, None)
    out: dict[str, torch.Tensor] = {}
    for new, old in _TOP.items():
        for suffix in _SUFFIXES:
            if old + suffix in src:
                out[new + suffix] = src.pop(old + suffix)
    out["scale_shift_table"] = src.pop("final_layer.scale_shift_table")
    blocks = _block_indices(src, "blocks.")
    if not blocks:
        raise KeyError("blocks.0.attn.qkv.weight")
    for n in blocks:
        d, o = f"transformer_blocks.{n}.", f"blocks.{n}."
        out[d + "scale_shift_table"] = src.pop(o + "scale_shift_table")
        for suffix in _SUFFIXES:
            qkv = src.pop(o + "attn.qkv" + suffix)
            kv = src.pop(o + "cross_attn.kv_linear" + suffix)
            if qkv.shape[0] % 3 or kv.shape[0] % 2:
                raise RuntimeError(f"{o}attn.qkv{suffix} / cross_attn.kv_linear{suffix} do not split into q, k, v")
            for x, part in zip("qkv", qkv.chunk(3)):
                out[f"{d}attn1.to_{x}{suffix}"] = part
            for x, part in zip("kv", kv.chunk(2)):
                out[f"{d}attn2.to_{x}{suffix}"] = part
            for new, old in _BLOCK.items():
                if o + old + suffix in src:
                    out[d + new + suffix] = src.pop(o + old + suffix)
    return out


def uses_micro_conditions(state: Mapping[str, torch.Tensor]) -> bool:
    """Whether an original-layout checkpoint has α's resolution / aspect-ratio embedders."""
    return any(k.startswith(("csize_embedder.", f"{COMFY_PREFIX}csize_embedder.")) for k in state)
