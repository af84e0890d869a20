"""LoKr / LoHa adapters as the LyCORIS-format .safetensors that ComfyUI, A1111/Forge and kohya load.

Module names are the kohya ones of export/naming.py (`lora_unet_...`, `lora_te_...`
or `lora_te1_/lora_te2_...`; LDM paths for the SDXL UNet); each module carries LyCORIS's
factor keys plus a float32 0-dim `.alpha`:

- LoHa: `.hada_w1_a .hada_w1_b .hada_w2_a .hada_w2_b` (and `.hada_t1 .hada_t2` for the
  CP/Tucker convolution form), ΔW = (w1_a @ w1_b) * (w2_a @ w2_b) * alpha / r with
  r = hada_w1_b.shape[0]; convolutions flatten to [out, in*k*k].
- LoKr: `.lokr_w1` or `.lokr_w1_a/.lokr_w1_b`, `.lokr_w2` or `.lokr_w2_a/.lokr_w2_b`
  (+ `.lokr_t2`), ΔW = kron(w1, w2) * scale, where the loaders' scale is alpha / r with
  r the rank of a decomposed factor (`lokr_w2_b.shape[0]`, else `lokr_w1_b.shape[0]`),
  and 1 when both factors are full matrices, whatever `.alpha` says (LyCORIS's
  LokrModule, ComfyUI's weight_adapter/lokr.py, A1111's network_lokr.py and diffusers'
  _bake_lokr_alpha_ all agree).

peft stores the same tensors under the same names and shapes (its LoKr/LoHa layers
are ports of LyCORIS's), but always scales by alpha / r. So a LoHa file and a LoKr
file with a decomposed factor carry alpha = scale * r and the tensors as trained; a
LoKr layer whose two factors are full matrices gets peft's scale multiplied into
lokr_w1 and alpha = r (LyCORIS's own value for that case), so every loader rebuilds
exactly the delta peft applied during training.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import nn

from tuitrain.trainer.export.kohya_lora import SAVE_DTYPES, write_with_hashes
from tuitrain.trainer.export.naming import kohya_named
from tuitrain.trainer.methods.peft_layers import LycorisLayerWeights, lycoris_layers


def loader_rank(layer: LycorisLayerWeights) -> int | None:
    """The r that LyCORIS loaders divide alpha by, from the file's shapes; None: they use scale 1."""
    f = layer.factors
    if layer.algo == "loha":
        return int(f["hada_w1_b"].shape[0])
    if "lokr_w2_b" in f:
        return int(f["lokr_w2_b"].shape[0])
    if "lokr_w1_b" in f:
        return int(f["lokr_w1_b"].shape[0])
    return None


def lycoris_tensors(layer: LycorisLayerWeights, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """One layer's file tensors by key suffix, with the scale convention of the loaders."""
    factors = {name: tensor.detach().to(device="cpu", dtype=torch.float32) for name, tensor in layer.factors.items()}
    rank = loader_rank(layer)
    if rank is None:  # LoKr, both factors full: loaders apply scale 1, so the file carries peft's scale.
        factors["lokr_w1"] = factors["lokr_w1"] * layer.scale
        alpha = float(layer.rank)
    elif rank != layer.rank:
        raise ValueError(f"{layer.algo} layer of rank {layer.rank} has a factor of rank {rank}; cannot export it")
    else:
        alpha = layer.scale * rank
    out = {name: tensor.to(dtype).contiguous() for name, tensor in factors.items()}
    out["alpha"] = torch.tensor(alpha, dtype=torch.float32)
    return out


def lycoris_state_dict(
    unet: nn.Module, text_encoders: list[nn.Module], *, dtype: torch.dtype = torch.float32,
    denoiser_prefix: str | None = None, denoiser_path: Callable[[str], str] | None = None,
) -> dict[str, torch.Tensor]:
    """The kohya-named LyCORIS tensors of every LoKr/LoHa layer in the denoiser and text encoders."""
    return kohya_named(unet, text_encoders, lambda model: {
        path: lycoris_tensors(layer, dtype) for path, layer in lycoris_layers(model).items()
    }, denoiser_prefix, denoiser_path)


def save_lycoris(
    path: str | os.PathLike[str],
    unet: nn.Module,
    text_encoders: list[nn.Module],
    *,
    save_dtype: str,
    metadata: Mapping[str, str],
    denoiser_prefix: str | None = None,
    denoiser_path: Callable[[str], str] | None = None,
) -> Path:
    """Write the LoKr/LoHa adapter to `path` atomically, with `metadata` plus kohya's sshs_* hashes."""
    tensors = lycoris_state_dict(unet, text_encoders, dtype=SAVE_DTYPES[save_dtype], denoiser_prefix=denoiser_prefix,
                                 denoiser_path=denoiser_path)
    if not tensors:
        raise ValueError("no LoKr/LoHa layers to save: inject_lora with lora.type lokr/loha was not called")
    return write_with_hashes(path, tensors, metadata)
