"""FLUX.1 LoRA files in kohya's layout: BFL module names, fused q/k/v (flux.lora_layout = "kohya").

kohya sd-scripts (networks/lora_flux.py) trains on BFL's transformer, so its files name each layer
`lora_unet_<BFL path with . -> _>` (`lora_unet_double_blocks_0_img_attn_qkv`) and the CLIP encoder
`lora_te1_<CLIP path>`, with `.lora_down.weight`, `.lora_up.weight` and `.alpha`. Users of kohya's
scripts, and tools that read only those names, ask for this layout; ComfyUI and Forge read it too.

tuitrain trains on diffusers' transformer, where BFL's fused projections are separate layers: q, k, v
of each stream (BFL `img_attn.qkv`, `txt_attn.qkv`) and a single block's q, k, v and MLP input (BFL
`linear1`). A LoRA on the separate layers is exactly a LoRA on the fused one of rank n * r: the downs
stacked, the ups placed block-diagonally (zeros where a part was not adapted), which is what this
writes. The alpha / rank scale is folded into the ups and `.alpha` is the fused rank, so every loader
applies scale 1. The final layer's adaLN has its two halves in the other order in BFL (layout.py), so
its up's rows are swapped. diffusers' own kohya-Flux converter cannot be the check (it drops the final
layer and assumes full-size widths): the test applies the file to BFL weights as ComfyUI does and maps
them back with layout.from_bfl, which is held to diffusers' checkpoint converter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch
from torch import nn

from tuitrain.trainer.export.naming import clip_path, kohya_name
from tuitrain.trainer.families.flux.layout import _DOUBLE, _FUSED_DOUBLE, _SINGLE, _SINGLE_FUSED, _TOP
from tuitrain.trainer.methods.peft_layers import LoraLayerWeights, lora_layers

UNET_PREFIX = "lora_unet"
TEXT_PREFIX = "lora_te1"  # CLIP-L; kohya names T5 lora_te2 (never adapted here)
_FINAL_ADALN = ("norm_out.linear", "final_layer.adaLN_modulation.1")


def _one_to_one() -> dict[str, str]:
    """diffusers module path pattern -> BFL path pattern for layers that are not fused ({i}: block index)."""
    table = {ours: bfl for bfl, ours in _TOP.items()}
    table.update({f"transformer_blocks.{{i}}.{ours}": f"double_blocks.{{i}}.{bfl}" for bfl, ours in _DOUBLE.items()})
    table.update({f"single_transformer_blocks.{{i}}.{ours}": f"single_blocks.{{i}}.{bfl}"
                  for bfl, ours in _SINGLE.items()})
    return table


def _fused() -> dict[str, tuple[str, int, int]]:
    """diffusers module path pattern -> (BFL path pattern, part index, part count) for fused layers."""
    table: dict[str, tuple[str, int, int]] = {}
    for bfl, names in _FUSED_DOUBLE.items():
        for index, name in enumerate(names):
            table[f"transformer_blocks.{{i}}.{name}"] = (f"double_blocks.{{i}}.{bfl}", index, len(names))
    for index, name in enumerate(_SINGLE_FUSED):
        table[f"single_transformer_blocks.{{i}}.{name}"] = ("single_blocks.{i}.linear1", index, len(_SINGLE_FUSED))
    return table


_ONE, _FUSED = _one_to_one(), _fused()


def _lookup(path: str) -> tuple[str, int | None, int]:
    """The BFL path of a diffusers module path, with its part index and count when it is fused."""
    match = re.match(r"^((?:single_)?transformer_blocks)\.(\d+)\.(.+)$", path)
    pattern, index = (f"{match.group(1)}.{{i}}.{match.group(3)}", match.group(2)) if match else (path, "")
    if pattern in _ONE:
        return _ONE[pattern].format(i=index), None, 1
    if path == _FINAL_ADALN[0]:
        return _FINAL_ADALN[1], None, 1
    if pattern in _FUSED:
        bfl, part, count = _FUSED[pattern]
        return bfl.format(i=index), part, count
    raise ValueError(f"transformer.{path}: kohya's FLUX.1 layout has no name for this layer (flux.lora_layout)")


def _folded_up(layer: LoraLayerWeights) -> torch.Tensor:
    return layer.up.float() * (layer.alpha / layer.rank)


def _fuse(parts: list[LoraLayerWeights | None], widths: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """One LoRA on the fused layer: downs stacked, ups block-diagonal, zero rows for parts not adapted."""
    present = [(i, layer) for i, layer in enumerate(parts) if layer is not None]
    down = torch.cat([layer.down.float() for _, layer in present], dim=0)
    up = torch.zeros(sum(widths), down.shape[0])
    column = 0
    for i, layer in present:
        row = sum(widths[:i])
        up[row: row + widths[i], column: column + layer.rank] = _folded_up(layer)
        column += layer.rank
    return down, up


def flux_kohya_state_dict(models: Mapping[str, nn.Module], denoiser_name: str, *,
                          dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """Every LoRA layer of the transformer (and CLIP) in kohya's FLUX.1 names, fused where BFL fuses."""
    out: dict[str, torch.Tensor] = {}

    def put(name: str, down: torch.Tensor, up: torch.Tensor) -> None:
        out[f"{name}.lora_down.weight"] = down.to("cpu", dtype).contiguous()
        out[f"{name}.lora_up.weight"] = up.to("cpu", dtype).contiguous()
        out[f"{name}.alpha"] = torch.tensor(float(down.shape[0]), dtype=dtype)  # alpha = rank: scale 1

    for component, model in models.items():
        layers = lora_layers(model)
        if any(layer.magnitude is not None for layer in layers.values()):
            raise ValueError("lora.use_dora: kohya's FLUX.1 layout is written without DoRA here")
        if component != denoiser_name:
            for path, layer in layers.items():
                put(kohya_name(TEXT_PREFIX, clip_path(path)), layer.down.float(), _folded_up(layer))
            continue
        modules = dict(model.named_modules())
        fused: dict[str, list[LoraLayerWeights | None]] = {}
        widths: dict[str, list[int]] = {}
        for path, layer in layers.items():
            bfl, part, count = _lookup(path)
            if part is None:
                up = _folded_up(layer)
                if path == _FINAL_ADALN[0]:
                    first, second = up.chunk(2, dim=0)
                    up = torch.cat([second, first], dim=0)
                put(kohya_name(UNET_PREFIX, bfl), layer.down.float(), up)
                continue
            fused.setdefault(bfl, [None] * count)[part] = layer
            if bfl not in widths:
                # Every part's output width, adapted or not, from the modules themselves (no full-size widths).
                block = ".".join(path.split(".")[:2])
                widths[bfl] = [_out_features(modules, block, name) for name in _part_names(path)]
        for bfl, parts in fused.items():
            down, up = _fuse(parts, widths[bfl])
            put(kohya_name(UNET_PREFIX, bfl), down, up)
    return out


def _part_names(path: str) -> tuple[str, ...]:
    """The diffusers names (relative to the block) of the fused layer that `path` is part of."""
    relative = path.split(".", 2)[2]
    for names in (*_FUSED_DOUBLE.values(), _SINGLE_FUSED):
        if relative in names:
            return names
    raise ValueError(path)


def _out_features(modules: Mapping[str, nn.Module], block: str, name: str) -> int:
    module = modules[f"{block}.{name}"]
    base = getattr(module, "base_layer", module)
    return int(base.out_features)
