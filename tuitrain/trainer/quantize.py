"""Quantized frozen weights (model.quantize): the denoiser's linear layers in int8 or nf4, through bitsandbytes.

Why bitsandbytes: it is the library QLoRA and every published low-VRAM Flux/SDXL recipe use
(SimpleTuner's nf4/int8 figures, diffusers' QLoRA write-up), it is already a dependency for the
8-bit optimizers, and its Linear8bitLt / Linear4bit layers run on the CPU too (measured on
0.50), so the CPU test suite exercises the same path a GPU run takes. diffusers'
BitsAndBytesConfig is not used: it refuses to load without a GPU. Layers are swapped in place
after loading, before the method injects its adapter, so peft wraps the quantized layer and
trains an fp32 adapter on top (backward flows through the dequantized weight).

What is quantized: every nn.Linear of the denoiser with at least MIN_WEIGHTS weights (the small
embedders and modulation heads of a tiny model stay as they are; in a full-size model they are a
rounding error of its memory). Convolutions stay: bitsandbytes has no quantized conv.
"""

from __future__ import annotations

import torch
from torch import nn

MODES = ("int8", "nf4")
MIN_WEIGHTS = 4096  # below this a layer's quantization scales cost about what they save
# Bytes per weight of each mode, quantization constants included (nf4: 4 bits + one fp32 absmax per 64),
# for the VRAM estimate's reasoning (tui/config_editor/estimate.py keeps its own torch-free copy).
BYTES_PER_WEIGHT = {"int8": 1.0 + 4 / 4096, "nf4": 0.5 + 4 / 64}


def _quantized(layer: nn.Linear, mode: str, compute_dtype: torch.dtype, device: torch.device) -> nn.Module:
    import bitsandbytes as bnb

    weight = layer.weight.data.to(torch.float32 if device.type == "cpu" else torch.float16)
    bias = None if layer.bias is None else nn.Parameter(layer.bias.data.to(compute_dtype), requires_grad=False)
    if mode == "nf4":
        new = bnb.nn.Linear4bit(layer.in_features, layer.out_features, bias=bias is not None,
                                compute_dtype=compute_dtype, quant_type="nf4", device="meta")
        new.weight = bnb.nn.Params4bit(weight, requires_grad=False, quant_type="nf4")
        # bitsandbytes repacks the weight for a faster CPU kernel the first time it runs in eval mode (samples),
        # which needs widths divisible by 32 / 64 and changes the numerics between training and sampling.
        new.support_avx512bf16_for_cpu = False
    else:
        new = bnb.nn.Linear8bitLt(layer.in_features, layer.out_features, bias=bias is not None,
                                  has_fp16_weights=False, threshold=6.0, device="meta")
        new.weight = bnb.nn.Int8Params(weight, requires_grad=False, has_fp16_weights=False)
    if bias is not None:
        new.bias = bias
    return new.to(device)  # bitsandbytes quantizes when the weight moves to its device


def quantize_linear_layers(model: nn.Module, mode: str, compute_dtype: torch.dtype, device: torch.device) -> int:
    """Replace `model`'s large nn.Linear layers by bitsandbytes `mode` layers on `device`; returns how many."""
    if mode not in MODES:
        raise ValueError(f"unknown quantization mode {mode!r}")
    targets = [(name, module) for name, module in model.named_modules()
               if type(module) is nn.Linear and module.weight.numel() >= MIN_WEIGHTS]
    for name, layer in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, _quantized(layer, mode, compute_dtype, device))
    return len(targets)


def weight_bytes(model: nn.Module) -> int:
    """Bytes the model's parameters and buffers hold (quantized weights at their stored size)."""
    tensors = [*model.parameters(), *model.buffers()]
    total = sum(t.numel() * t.element_size() for t in tensors)
    for module in model.modules():  # nf4's absmax constants live beside the weight, not as parameters
        state = getattr(getattr(module, "weight", None), "quant_state", None)
        if state is not None and getattr(state, "absmax", None) is not None:
            total += state.absmax.numel() * state.absmax.element_size()
    return total
