"""FLUX.1's transformer in Black Forest Labs' single-file layout (flux1-dev.safetensors) and back.

BFL's names are what ComfyUI, Forge and kohya read and what community fine-tunes ship:
`double_blocks.N.img_attn.qkv` (q, k, v fused), `single_blocks.N.linear1` (q, k, v and the MLP
input fused), `final_layer.adaLN_modulation.1` (shift and scale, in the other order than
diffusers' norm_out). diffusers converts BFL -> diffusers
(single_file_utils.convert_flux_transformer_checkpoint_to_diffusers) but hardcodes the full
model's width (3072) and converts nothing the other way, so both directions are written here,
with every width read from the tensors; tests hold `from_bfl` to diffusers' converter on the
full-size architecture (meta device) and `to_bfl` / `from_bfl` to an exact round trip.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

# One-to-one renames: BFL name -> diffusers name (block indices are filled in).
_TOP = {
    "time_in.in_layer": "time_text_embed.timestep_embedder.linear_1",
    "time_in.out_layer": "time_text_embed.timestep_embedder.linear_2",
    "vector_in.in_layer": "time_text_embed.text_embedder.linear_1",
    "vector_in.out_layer": "time_text_embed.text_embedder.linear_2",
    "guidance_in.in_layer": "time_text_embed.guidance_embedder.linear_1",
    "guidance_in.out_layer": "time_text_embed.guidance_embedder.linear_2",
    "txt_in": "context_embedder",
    "img_in": "x_embedder",
    "final_layer.linear": "proj_out",
}
_DOUBLE = {
    "img_mod.lin": "norm1.linear",
    "txt_mod.lin": "norm1_context.linear",
    "img_attn.proj": "attn.to_out.0",
    "txt_attn.proj": "attn.to_add_out",
    "img_mlp.0": "ff.net.0.proj",
    "img_mlp.2": "ff.net.2",
    "txt_mlp.0": "ff_context.net.0.proj",
    "txt_mlp.2": "ff_context.net.2",
}
_DOUBLE_NORMS = {
    "img_attn.norm.query_norm.scale": "attn.norm_q.weight",
    "img_attn.norm.key_norm.scale": "attn.norm_k.weight",
    "txt_attn.norm.query_norm.scale": "attn.norm_added_q.weight",
    "txt_attn.norm.key_norm.scale": "attn.norm_added_k.weight",
}
_SINGLE = {"modulation.lin": "norm.linear", "linear2": "proj_out"}
_SINGLE_NORMS = {"norm.query_norm.scale": "attn.norm_q.weight", "norm.key_norm.scale": "attn.norm_k.weight"}
_FUSED_DOUBLE = {"img_attn.qkv": ("attn.to_q", "attn.to_k", "attn.to_v"),
                 "txt_attn.qkv": ("attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj")}
_SINGLE_FUSED = ("attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp")
BFL_MARKER = "double_blocks.0.img_attn.qkv.weight"
COMFY_PREFIX = "model.diffusion_model."


def is_bfl(keys: Mapping[str, object] | set[str]) -> bool:
    """Whether a state dict (or header's key set) is a FLUX.1 transformer in BFL naming (ComfyUI's prefix allowed)."""
    return BFL_MARKER in keys or COMFY_PREFIX + BFL_MARKER in keys


def _swap_halves(weight: torch.Tensor) -> torch.Tensor:
    """(shift, scale) <-> (scale, shift): BFL's final adaLN and diffusers' AdaLayerNormContinuous disagree."""
    first, second = weight.chunk(2, dim=0)
    return torch.cat([second, first], dim=0)


def _blocks(keys: list[str], kind: str) -> list[int]:
    found = {int(m.group(1)) for k in keys if (m := re.match(rf"{kind}\.(\d+)\.", k))}
    return sorted(found)


def from_bfl(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A BFL-layout transformer state dict in diffusers' FluxTransformer2DModel names."""
    src = {k.removeprefix(COMFY_PREFIX): v for k, v in state.items()}
    out: dict[str, torch.Tensor] = {}
    for bfl, ours in _TOP.items():
        for suffix in ("weight", "bias"):
            if f"{bfl}.{suffix}" in src:
                out[f"{ours}.{suffix}"] = src[f"{bfl}.{suffix}"]
    for suffix in ("weight", "bias"):
        out[f"norm_out.linear.{suffix}"] = _swap_halves(src[f"final_layer.adaLN_modulation.1.{suffix}"])
    keys = list(src)
    for i in _blocks(keys, "double_blocks"):
        b, d = f"double_blocks.{i}.", f"transformer_blocks.{i}."
        for bfl, ours in _DOUBLE.items():
            for suffix in ("weight", "bias"):
                out[f"{d}{ours}.{suffix}"] = src[f"{b}{bfl}.{suffix}"]
        for bfl, ours in _DOUBLE_NORMS.items():
            out[d + ours] = src[b + bfl]
        for bfl, names in _FUSED_DOUBLE.items():
            for suffix in ("weight", "bias"):
                for name, part in zip(names, torch.chunk(src[f"{b}{bfl}.{suffix}"], 3, dim=0)):
                    out[f"{d}{name}.{suffix}"] = part
    for i in _blocks(keys, "single_blocks"):
        b, d = f"single_blocks.{i}.", f"single_transformer_blocks.{i}."
        for bfl, ours in _SINGLE.items():
            for suffix in ("weight", "bias"):
                out[f"{d}{ours}.{suffix}"] = src[f"{b}{bfl}.{suffix}"]
        for bfl, ours in _SINGLE_NORMS.items():
            out[d + ours] = src[b + bfl]
        inner = src[f"{b}linear2.weight"].shape[0]  # the model width (3072 for FLUX.1)
        mlp = src[f"{b}linear1.weight"].shape[0] - 3 * inner
        for suffix in ("weight", "bias"):
            parts = torch.split(src[f"{b}linear1.{suffix}"], (inner, inner, inner, mlp), dim=0)
            for name, part in zip(_SINGLE_FUSED, parts):
                out[f"{d}{name}.{suffix}"] = part
    return out


def to_bfl(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """diffusers' FluxTransformer2DModel state dict in BFL's single-file names (the inverse of from_bfl)."""
    out: dict[str, torch.Tensor] = {}
    for bfl, ours in _TOP.items():
        for suffix in ("weight", "bias"):
            if f"{ours}.{suffix}" in state:
                out[f"{bfl}.{suffix}"] = state[f"{ours}.{suffix}"]
    for suffix in ("weight", "bias"):
        out[f"final_layer.adaLN_modulation.1.{suffix}"] = _swap_halves(state[f"norm_out.linear.{suffix}"])
    keys = list(state)
    for i in _blocks(keys, "transformer_blocks"):
        b, d = f"double_blocks.{i}.", f"transformer_blocks.{i}."
        for bfl, ours in _DOUBLE.items():
            for suffix in ("weight", "bias"):
                out[f"{b}{bfl}.{suffix}"] = state[f"{d}{ours}.{suffix}"]
        for bfl, ours in _DOUBLE_NORMS.items():
            out[b + bfl] = state[d + ours]
        for bfl, names in _FUSED_DOUBLE.items():
            for suffix in ("weight", "bias"):
                out[f"{b}{bfl}.{suffix}"] = torch.cat([state[f"{d}{name}.{suffix}"] for name in names], dim=0)
    for i in _blocks(keys, "single_transformer_blocks"):
        b, d = f"single_blocks.{i}.", f"single_transformer_blocks.{i}."
        for bfl, ours in _SINGLE.items():
            for suffix in ("weight", "bias"):
                out[f"{b}{bfl}.{suffix}"] = state[f"{d}{ours}.{suffix}"]
        for bfl, ours in _SINGLE_NORMS.items():
            out[b + bfl] = state[d + ours]
        for suffix in ("weight", "bias"):
            out[f"{b}linear1.{suffix}"] = torch.cat([state[f"{d}{name}.{suffix}"] for name in _SINGLE_FUSED], dim=0)
    return out
