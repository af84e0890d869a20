"""The trained LoRA as the kohya-format .safetensors that ComfyUI, A1111/Forge, kohya and diffusers load.

(LoKr/LoHa use the same module names with LyCORIS's tensors: export/lycoris.py.)

Each adapted module `<name>` carries `.lora_down.weight` [r, in(, k, k)], `.lora_up.weight`
[out, r(, 1, 1)] and a float32 0-dim `.alpha` (scale = alpha / r). The module names
(`lora_unet_...`, `lora_te_...`, `lora_te1_/lora_te2_...`; diffusers paths for SD 1.x/2.x,
LDM paths for SDXL) and which loader reads which come from export/naming.py.

diffusers.utils.convert_state_dict_to_kohya is not used: it names the SD 1.x text
encoder `lora_te1`, writes SDXL's UNet in diffusers names (which A1111 partly drops)
and alpha = rank as int64.

DoRA: `.dora_scale` holds peft's magnitude, which is per *output* channel of W + s*BA,
shaped [out, 1] / [out, 1, 1, 1] (keepdim, so it broadcasts against the weight; a
1-D [out] mis-broadcasts in ComfyUI, Comfy-Org/ComfyUI#12938). That is the
"wd_on_output" layout of LyCORIS / OneTrainer's decompose_output_axis. No popular UI
applies it exactly (ComfyUI/Forge normalise by the base weight's norm, A1111 per input
column, kohya ignores dora_scale) and diffusers drops dora_scale keys when loading kohya
files: only the diffusers-format folder (saving.diffusers_format) reloads DoRA exactly.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from tuitrain.trainer.export.atomic import atomic_save_safetensors, fsync_dir, fsync_path
from tuitrain.trainer.export.metadata import safetensors_hashes
from tuitrain.trainer.export.naming import kohya_named
from tuitrain.trainer.methods.peft_layers import ADAPTER, LoraHandles, LoraLayerWeights, lora_layers

SAVE_DTYPES: dict[str, torch.dtype] = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
_MAGNITUDE = "lora_magnitude_vector"


def _cast(tensor: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return tensor.detach().to(device="cpu", dtype=dtype).contiguous()


def _lora_tensors(layer: LoraLayerWeights, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    tensors = {
        "lora_down.weight": _cast(layer.down, dtype),
        "lora_up.weight": _cast(layer.up, dtype),
        "alpha": torch.tensor(layer.alpha, dtype=torch.float32),
    }
    if layer.magnitude is not None:
        shape = (layer.up.shape[0], *[1] * (layer.up.dim() - 1))
        tensors["dora_scale"] = _cast(layer.magnitude.reshape(shape), dtype)
    return tensors


def kohya_state_dict(
    unet: nn.Module, text_encoders: list[nn.Module], *, dtype: torch.dtype = torch.float32
) -> dict[str, torch.Tensor]:
    """The kohya-named tensors of every LoRA layer in the UNet and text encoders."""
    return kohya_named(unet, text_encoders, lambda model: {
        path: _lora_tensors(layer, dtype) for path, layer in lora_layers(model).items()
    })


def write_with_hashes(path: str | os.PathLike[str], tensors: dict[str, torch.Tensor],
                      metadata: Mapping[str, str]) -> Path:
    """Write `tensors` atomically with `metadata` plus kohya's sshs_* hashes.

    The hashes are computed from the tensors first, so the file is written once.
    """
    header = {**metadata, **safetensors_hashes(tensors, metadata)}
    return atomic_save_safetensors(tensors, path, header)


def save_kohya_lora(
    path: str | os.PathLike[str],
    unet: nn.Module,
    text_encoders: list[nn.Module],
    *,
    save_dtype: str,
    metadata: Mapping[str, str],
) -> Path:
    """Write the LoRA to `path` atomically, with `metadata` plus kohya's sshs_* hashes."""
    tensors = kohya_state_dict(unet, text_encoders, dtype=SAVE_DTYPES[save_dtype])
    if not tensors:
        raise ValueError("no LoRA layers to save: inject_lora was not called on these models")
    return write_with_hashes(path, tensors, metadata)


def save_diffusers_lora(
    folder: str | os.PathLike[str],
    pipeline_cls: type,
    handles: LoraHandles,
    *,
    save_dtype: str,
    weight_name: str = "pytorch_lora_weights.safetensors",
) -> Path:
    """The diffusers/peft format (saving.diffusers_format) through `pipeline_cls.save_lora_weights`.

    Written in a temporary sibling folder and moved file by file with os.replace, so
    the target folder never holds a partial weight file. The peft config goes into the
    header, so conv rank/alpha patterns and DoRA reload as trained.
    """
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    dtype = SAVE_DTYPES[save_dtype]
    by_component: dict[str, dict[str, torch.Tensor]] = {name: {} for name in handles.adapted}
    for key, value in handles.state_dict().items():
        component, _, rest = key.partition(".")
        if component != handles.denoiser_name and rest.endswith(_MAGNITUDE):
            # transformers 5 loads text-encoder adapters by renaming `lora_*` to
            # `lora_*.<adapter>`; a bare `lora_magnitude_vector` then misses its
            # `.weight` and the DoRA magnitude silently stays at its initial value.
            rest += ".weight"
        by_component[component][rest] = _cast(value, dtype)
    kwargs: dict[str, object] = {}
    models = handles.models()
    for name, layers in by_component.items():
        kwargs[f"{name}_lora_layers"] = layers
        kwargs[f"{name}_lora_adapter_metadata"] = models[name].peft_config[ADAPTER].to_dict()
    if not kwargs:
        raise ValueError("no LoRA layers to save: inject_lora was not called on these models")
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}.") as temp:
        pipeline_cls.save_lora_weights(temp, weight_name=weight_name, safe_serialization=True, **kwargs)
        for written in sorted(Path(temp).iterdir()):
            fsync_path(written)
            os.replace(written, target / written.name)
    fsync_dir(target)
    return target / weight_name

