"""Apply a saved LoKr / LoHa file to a loaded SD 1.x / 2.x / SDXL pipeline with LyCORIS, at a strength.

diffusers loads no LoKr or LoHa; LyCORIS (the library that defines them, and what ComfyUI's and
kohya's loaders follow) does, by kohya module names: `lora_unet_<path>` and `lora_te(1|2)_<path>`.
Its loader finds modules by the names of the model it is given, so two views give it the names
tuitrain's files use (export/naming.py): SDXL's UNet under its LDM names, and CLIP under the
`text_model.` nesting transformers 5 flattened away. The views hold the same module objects:
LyCORIS's forward hooks land on the pipeline's own layers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from tuitrain.trainer.export.naming import unet_has_ldm_names
from tuitrain.trainer.families.base import ModelParts
from tuitrain.trainer.loading.layout import ldm_unet_module


class _LdmNamedUnet(nn.Module):
    """A diffusers SDXL UNet's Linear/Conv2d layers under kohya's LDM names."""

    def __init__(self, unet: nn.Module) -> None:
        super().__init__()
        for path, module in unet.named_modules():
            if isinstance(module, (nn.Linear, nn.Conv2d)):
                self.add_module(ldm_unet_module(path, unet.config).replace(".", "_"), module)


class _ClipTextModelNesting(nn.Module):
    """A CLIP text encoder under a `text_model` child, the nesting kohya names its layers by."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.text_model = encoder


def _named_like_kohya(encoder: nn.Module) -> nn.Module:
    return encoder if any(name == "text_model" for name, _ in encoder.named_children()) else _ClipTextModelNesting(encoder)


def apply_lycoris_file(parts: ModelParts, file: Path, device: torch.device) -> Any:
    """LyCORIS's network for `file`, hooked into the pipeline's UNet and text encoders (multiplier 1)."""
    from lycoris.kohya import LycorisNetworkKohya, create_network_from_weights

    unet = parts.denoiser
    unet_view = _LdmNamedUnet(unet) if unet_has_ldm_names(unet.config) else unet
    encoders = [_named_like_kohya(te) for te in parts.text_encoders]
    te_arg: Any = encoders[0] if len(encoders) == 1 else encoders  # a list: lora_te1_ / lora_te2_ names
    # The loader first builds LyCORIS's default network, whose targets reach a diffusers UNet's
    # time_embedding.linear_1 twice (by class and by name) and trip its duplicate-name check; only the
    # modules made from the file are used, so that default network is left empty.
    saved = LycorisNetworkKohya.UNET_TARGET_REPLACE_NAME
    LycorisNetworkKohya.UNET_TARGET_REPLACE_NAME = []
    try:
        network, _ = create_network_from_weights(1.0, str(file), None, te_arg, unet_view, for_inference=True)
    finally:
        LycorisNetworkKohya.UNET_TARGET_REPLACE_NAME = saved
    network.apply_to(te_arg, unet_view, apply_text_encoder=True, apply_unet=True)
    dtype = next(unet.parameters()).dtype
    network.to(device, dtype)
    if not network.unet_loras and not network.text_encoder_loras:
        raise SystemExit(f"tuitrain sample: {file.name} holds no layer of this base model (a file of another model?)")
    return network


def set_strength(network: Any, strength: float) -> None:
    """Every module's multiplier (LyCORIS scales each layer's difference by it; 0: the base model's layer)."""
    for module in network.unet_loras + network.text_encoder_loras:
        module.multiplier = strength
