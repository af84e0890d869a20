"""A denoiser quantized while it loads (model.quantize on a diffusers folder): no full-precision copy in RAM.

diffusers' from_pretrained materialises the whole denoiser in the dtype asked for before anything
can quantize it: FLUX.1's transformer is 48 GB in fp32 and 24 GB in bf16, which is what a run
needed in host RAM before its first step (SimpleTuner users report ~50 GB and minutes just to
quantize Flux). Here the model is built on the meta device (accelerate's init_empty_weights: no
memory), and its weights are read from the safetensors files one module at a time (safe_open
memory-maps them): each large linear layer is quantized onto the training device as soon as its
weight and bias are in, and its full-precision copy is dropped right away; the small rest (norms,
embedders, convolutions) is kept in the compute dtype. The files are read a tensor at a time
(read_tensors says why not through a memory map). Peak host memory is the quantized model plus
one layer (bench/quantize_load.py measures it).

Why not diffusers' quantization_config (BitsAndBytesConfig / QuantoConfig): BitsAndBytesConfig
refuses to load without a GPU, so the CPU test suite could not go through the path a GPU run takes,
and both would give layers quantized otherwise than trainer/quantize.py's (thresholds, nf4's CPU
repacking): the run, its resume and its samples would depend on how the model was loaded.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from itertools import groupby
from pathlib import Path
from typing import Any

import torch

from tuitrain.trainer.quantize import check_available, is_target, quantized_layer


# safetensors' dtype names (the format's spec) and torch's.
_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
           "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
           "BOOL": torch.bool, "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2}


def read_tensors(path: Path) -> Iterator[tuple[str, torch.Tensor]]:
    """The tensors of a .safetensors file one at a time, in key order, each read into its own memory.

    Not safetensors' safe_open, measured (bench/quantize_load.py, SDXL UNet in 1 GB bf16 shards): its
    tensors live in a memory map of the whole file, whose pages stay resident as long as any tensor of the
    file is referenced: the quantized load peaked at 9.4 GB over the imports for a 2.7 GB int8 model. A
    read per tensor keeps one tensor in memory beyond what the model holds (the format is an 8-byte
    header length, a JSON header of dtypes, shapes and byte offsets, then the data)."""
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
        header.pop("__metadata__", None)
        for name in sorted(header):
            entry = header[name]
            dtype = _DTYPES[entry["dtype"]]
            begin, end = entry["data_offsets"]
            if end == begin:
                yield name, torch.empty(entry["shape"], dtype=dtype)
                continue
            buffer = bytearray(end - begin)
            f.seek(8 + length + begin)
            f.readinto(buffer)
            yield name, torch.frombuffer(buffer, dtype=dtype).reshape(entry["shape"])


RELEASE_EVERY = 256 << 20  # bytes read between two release_freed_memory() calls


def release_freed_memory() -> None:
    """Give the memory freed so far back to the system (glibc's malloc_trim; nothing elsewhere).

    Measured (bench/quantize_load.py, SDXL UNet to fp8): the full-precision copies freed layer by layer
    stay in glibc's heap as holes between the kept quantized tensors, so the process's RSS grew to 7.1 GB
    for a 2.7 GB model, and 2.8 GB after one malloc_trim. Trimming every RELEASE_EVERY bytes keeps the
    peak near the quantized model's size."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        if libc is not None and hasattr(libc, "malloc_trim"):
            libc.malloc_trim(0)
    except OSError:
        pass


def weight_files(folder: Path) -> list[Path]:
    """The denoiser folder's safetensors weights (one file or the shards its index names); [] when it has none
    (a .bin folder, a variant: from_pretrained loads those)."""
    index = folder / "diffusion_pytorch_model.safetensors.index.json"
    if index.is_file():
        names = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        return [folder / name for name in names]
    single = folder / "diffusion_pytorch_model.safetensors"
    return [single] if single.is_file() else []


def _load_module(model: torch.nn.Module, owner: str, tensors: list[tuple[str, torch.Tensor]], expected: set[str],
                 path: Path, mode: str, compute_dtype: torch.dtype, device: torch.device) -> int:
    """Put one module's tensors into the empty `model`, quantizing it when it is a target; bytes read. Its own
    function so the full-precision tensors are garbage when it returns."""
    from accelerate.utils import set_module_tensor_to_device

    read = 0
    for name, tensor in tensors:
        if name not in expected:
            raise ValueError(f"'{path.name}' holds {name}, which {type(model).__name__}'s config has no place for")
        set_module_tensor_to_device(model, name, "cpu", value=tensor, dtype=compute_dtype)
        read += tensor.numel() * tensor.element_size()
    tensors.clear()
    module = model.get_submodule(owner) if owner else model
    if is_target(module) and all(not p.is_meta for p in module.parameters(recurse=False)):
        parent_name, _, child = owner.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, quantized_layer(module, mode, compute_dtype, device))
    return read


def load_quantized(cls: Any, folder: Path, mode: str, compute_dtype: torch.dtype, device: torch.device) -> torch.nn.Module:
    """`cls` (a diffusers model class) from `folder` (config.json + safetensors), its large linear layers
    quantized in `mode` onto `device` as they load; everything else in `compute_dtype` on the CPU (place()
    moves it). Raises ValueError when the files do not fit the config."""
    from accelerate import init_empty_weights

    check_available(mode)  # a missing library is one line before anything loads
    with init_empty_weights():
        # eval() as from_pretrained returns it; the quantized layers inserted below start in training mode as
        # the ones quantize_linear_layers inserts (bitsandbytes' int8 matmul differs between the two modes).
        model = cls.from_config(cls.load_config(str(folder))).eval()
    expected = set(model.state_dict())
    seen: set[str] = set()
    unreleased = 0
    for path in weight_files(folder):
        # Keys come sorted: a module's weight and bias come together.
        for owner, items in groupby(read_tensors(path), key=lambda item: item[0].rpartition(".")[0]):
            tensors = list(items)
            seen.update(name for name, _ in tensors)
            unreleased += _load_module(model, owner, tensors, expected, path, mode, compute_dtype, device)
            if unreleased > RELEASE_EVERY:
                release_freed_memory()
                unreleased = 0
    release_freed_memory()
    missing = expected - seen
    if missing:
        raise ValueError(f"the weights in '{folder}' lack {len(missing)} of the config's tensors, e.g. {sorted(missing)[0]}")
    return model
