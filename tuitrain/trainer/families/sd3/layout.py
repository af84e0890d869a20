"""SD3 / SD3.5 transformer weights in Stability AI's layout (sd3.5_large.safetensors, the MMDiT reference code's
names), written from diffusers' SD3Transformer2DModel.

The inverse of diffusers' convert_sd3_transformer_checkpoint_to_diffusers (single_file_utils.py,
Apache-2.0), which reads these files: q/k/v fused into `attn.qkv` per stream, the context stream
of the last block without its output projection and MLP (diffusers' context_pre_only), the final
adaLN halves in SAI's (shift, scale) order. Written out here because diffusers converts only the
other way; block count, widths and the SD3.5 medium second attention come from the tensors.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

PREFIX = "model.diffusion_model."
_TOP = {
    "pos_embed.proj": "x_embedder.proj",
    "time_text_embed.timestep_embedder.linear_1": "t_embedder.mlp.0",
    "time_text_embed.timestep_embedder.linear_2": "t_embedder.mlp.2",
    "time_text_embed.text_embedder.linear_1": "y_embedder.mlp.0",
    "time_text_embed.text_embedder.linear_2": "y_embedder.mlp.2",
    "context_embedder": "context_embedder",
    "proj_out": "final_layer.linear",
}
# Inside block N (transformer_blocks.N. -> joint_blocks.N.), one to one.
_BLOCK = {
    "attn.norm_q": "x_block.attn.ln_q", "attn.norm_k": "x_block.attn.ln_k",
    "attn.norm_added_q": "context_block.attn.ln_q", "attn.norm_added_k": "context_block.attn.ln_k",
    "attn.to_out.0": "x_block.attn.proj", "attn.to_add_out": "context_block.attn.proj",
    "attn2.norm_q": "x_block.attn2.ln_q", "attn2.norm_k": "x_block.attn2.ln_k", "attn2.to_out.0": "x_block.attn2.proj",
    "norm1.linear": "x_block.adaLN_modulation.1",
    "ff.net.0.proj": "x_block.mlp.fc1", "ff.net.2": "x_block.mlp.fc2",
    "ff_context.net.0.proj": "context_block.mlp.fc1", "ff_context.net.2": "context_block.mlp.fc2",
}
_FUSED = {"attn.to_{}": "x_block.attn.qkv", "attn.add_{}_proj": "context_block.attn.qkv",
          "attn2.to_{}": "x_block.attn2.qkv"}


def _swap_halves(weight: torch.Tensor) -> torch.Tensor:
    """diffusers' (scale, shift) <-> SAI's (shift, scale): the same swap both ways."""
    first, second = weight.chunk(2, dim=0)
    return torch.cat([second, first], dim=0)


def to_sai(state: Mapping[str, torch.Tensor], prefix: str = PREFIX) -> dict[str, torch.Tensor]:
    """diffusers SD3Transformer2DModel state dict -> SAI's keys under `prefix` (ComfyUI's model.diffusion_model.)."""
    src = dict(state)
    out: dict[str, torch.Tensor] = {"pos_embed": src.pop("pos_embed.pos_embed")}
    for new, old in _TOP.items():
        for suffix in (".weight", ".bias"):
            if new + suffix in src:
                out[old + suffix] = src.pop(new + suffix)
    for suffix in (".weight", ".bias"):
        out["final_layer.adaLN_modulation.1" + suffix] = _swap_halves(src.pop("norm_out.linear" + suffix))
    blocks = sorted({int(m.group(1)) for k in src if (m := re.match(r"transformer_blocks\.(\d+)\.", k))})
    for n in blocks:
        d, o = f"transformer_blocks.{n}.", f"joint_blocks.{n}."
        last = n == blocks[-1]
        for suffix in (".weight", ".bias"):
            for pattern, fused in _FUSED.items():
                parts = [d + pattern.format(x) + suffix for x in "qkv"]
                if parts[0] in src:
                    out[o + fused + suffix] = torch.cat([src.pop(p) for p in parts])
            for new, old in _BLOCK.items():
                if d + new + suffix in src:
                    out[o + old + suffix] = src.pop(d + new + suffix)
            context = d + "norm1_context.linear" + suffix
            out[o + "context_block.adaLN_modulation.1" + suffix] = _swap_halves(src[context]) if last else src[context]
            del src[context]
    if src:
        raise KeyError(f"no SAI name for {sorted(src)[:3]}")
    return {prefix + k: v for k, v in out.items()}
