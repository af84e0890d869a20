"""Quantized frozen weights (model.quantize, model.quantize_text_encoders): linear layers in int8, nf4, fp8 or int4.

Which library stores which mode, chosen on what was measured (CPU, torch 2.13, peft 0.21 LoRA and
LoKr injected on top, loss backward through the base; /tmp scripts, figures in the commit message):

- int8, nf4: bitsandbytes. It is the library QLoRA and every published low-VRAM Flux/SDXL recipe
  use (SimpleTuner's nf4/int8 figures, diffusers' QLoRA write-up), it is already a dependency for
  the 8-bit optimizers, and its Linear8bitLt / Linear4bit layers run on the CPU too (0.50), so the
  CPU tests exercise the same path a GPU run takes. diffusers' BitsAndBytesConfig is not used: it
  refuses to load without a GPU. nf4 packs the weight into a flat buffer, which peft's LoKr / LoHa
  take their factor shapes from (a traceback at the first step): the config refuses that pair.
- fp8, int4: optimum-quanto (qfloat8 e4m3 per-row, qint4 per-128-group). Both train with LoRA and
  with LoKr on top on the CPU (relative output error of the quantized base alone on a random
  512x1024 MLP: fp8 0.035, int4 0.090; nf4 0.13, int8 0.006). The alternatives measured: torchao's
  Float8WeightOnlyConfig works as well as quanto's fp8 (same error, same speed class), but
  torchao's int4 (Int4WeightOnlyConfig) needs the extra `mslk` kernel package and fails without
  it, and bitsandbytes' 4-bit is nf4/fp4 only; one library for both modes keeps one code path.
  SimpleTuner's published int4 figure (13 GB for a rank-16 Flux LoRA) is quanto's int4 too.
  Weight-only fp8 dequantizes before the matmul, so it needs no fp8 hardware: any GPU (and the CPU)
  trains with it; it saves memory, not time. quanto builds a small C++ extension (unpacking int4)
  with the machine's compiler the first time int4 runs on a CPU (~20 s here, kept in its package's
  folder). Not verified on a GPU here: on CUDA (compute capability 8+) quanto picks its Marlin fp8 /
  AWQ int4 kernels, which it compiles at first use with the CUDA toolkit (nvcc), and falls back to
  dequantizing only where those do not apply. torchao's fp8 would need no build step, but torchao 0.18
  beside torch 2.13 / Python 3.11 prints failures to load its compiled parts whenever it is imported
  (measured); it stays out until a GPU run shows quanto's kernels are a problem.

Layers are swapped one by one onto the device (quantize_linear_layers), so the unquantized model
never has to fit there; peft then wraps the quantized layer and trains an fp32 adapter on top
(backward flows through the dequantized weight).

What is quantized: every nn.Linear with at least MIN_WEIGHTS weights (the small embedders and
modulation heads of a tiny model stay as they are; in a full-size model they are a rounding error
of its memory). Convolutions stay: neither library quantizes convolutions for training.
"""

from __future__ import annotations

import torch
from torch import nn

from tuitrain.trainer.errors import TrainingError

MODES = ("int8", "nf4", "fp8", "int4")
BNB_MODES = ("int8", "nf4")
QUANTO_MODES = {"fp8": "qfloat8", "int4": "qint4"}  # model.quantize -> optimum.quanto's weight type
MIN_WEIGHTS = 4096  # below this a layer's quantization scales cost about what they save
# Bytes per weight of each mode, quantization constants included (nf4: 4 bits + one fp32 absmax per 64;
# int4: 4 bits + a scale and shift per 128 in the compute dtype, bf16 on a GPU), for the VRAM estimate's
# reasoning (tui/config_editor/estimate.py keeps its own torch-free copy).
BYTES_PER_WEIGHT = {"int8": 1.0 + 4 / 4096, "nf4": 0.5 + 4 / 64, "fp8": 1.0 + 2 / 3072, "int4": 0.5 + 4 / 128}


class QuantizeUnavailable(TrainingError):
    """A mode whose library is not installed: one line naming the key and the install command."""


def _bnb_quantized(layer: nn.Linear, mode: str, compute_dtype: torch.dtype, device: torch.device) -> nn.Module:
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


def _quanto_quantized(layer: nn.Linear, mode: str, compute_dtype: torch.dtype, device: torch.device) -> nn.Module:
    import optimum.quanto as quanto
    from optimum.quanto.nn import QLinear

    layer = layer.to(device, dtype=compute_dtype)  # quanto's scales take the weight's dtype
    new = QLinear.from_module(layer, weights=getattr(quanto, QUANTO_MODES[mode]))
    new.freeze()  # quantizes the weight now: the full-precision copy is dropped
    return new.requires_grad_(False)


def check_available(mode: str, key: str = "model.quantize") -> None:
    """Raise QuantizeUnavailable (one line) when `mode`'s library is not installed."""
    if mode in QUANTO_MODES:
        try:
            import optimum.quanto  # noqa: F401
        except ImportError as exc:
            from tuitrain.trainer.loading.preflight import missing_quanto

            raise QuantizeUnavailable(missing_quanto(key, mode)) from exc


def quantized_layer(layer: nn.Linear, mode: str, compute_dtype: torch.dtype, device: torch.device) -> nn.Module:
    """`layer` stored in `mode` on `device` (a new module; `layer` itself is left as it was)."""
    if mode in BNB_MODES:
        return _bnb_quantized(layer, mode, compute_dtype, device)
    if mode in QUANTO_MODES:
        return _quanto_quantized(layer, mode, compute_dtype, device)
    raise ValueError(f"unknown quantization mode {mode!r}")


def is_target(module: nn.Module) -> bool:
    """Whether quantize_linear_layers stores `module` quantized."""
    return type(module) is nn.Linear and module.weight.numel() >= MIN_WEIGHTS


def quantize_linear_layers(model: nn.Module, mode: str, compute_dtype: torch.dtype, device: torch.device) -> int:
    """Replace `model`'s large nn.Linear layers by `mode` layers on `device`, one at a time; returns how many."""
    if mode not in MODES:
        raise ValueError(f"unknown quantization mode {mode!r}")
    check_available(mode)
    targets = [(name, module) for name, module in model.named_modules() if is_target(module)]
    for name, layer in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, quantized_layer(layer, mode, compute_dtype, device))
    return len(targets)


def _tensor_bytes(tensor: torch.Tensor) -> int:
    """Bytes a tensor really holds: a quanto tensor subclass reports its original dtype's size, so its inner
    tensors (data, scale, shift) are counted instead."""
    flatten = getattr(tensor, "__tensor_flatten__", None)
    if flatten is not None and type(tensor) is not torch.Tensor and type(tensor) is not nn.Parameter:
        names, _ = flatten()
        return sum(_tensor_bytes(getattr(tensor, name)) for name in names)
    return tensor.numel() * tensor.element_size()


def weight_bytes(model: nn.Module) -> int:
    """Bytes the model's parameters and buffers hold (quantized weights at their stored size)."""
    tensors = [*model.parameters(), *model.buffers()]
    total = sum(_tensor_bytes(t) for t in tensors)
    for module in model.modules():  # nf4's absmax constants live beside the weight, not as parameters
        state = getattr(getattr(module, "weight", None), "quant_state", None)
        if state is not None and getattr(state, "absmax", None) is not None:
            total += state.absmax.numel() * state.absmax.element_size()
    return total
