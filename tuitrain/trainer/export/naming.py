"""What each adapted layer is called in a kohya-format file (plain LoRA and LyCORIS alike).

A module's name is `<prefix>_<module path with . -> _>`; the prefix is `lora_unet` for
the UNet and `lora_te` (one text encoder: SD 1.x/2.x) or `lora_te1` / `lora_te2` (SDXL).
Which module path is written is what decides whether a loader finds the layer. The
rules, as the loaders implement them:

- SD 1.x / 2.x UNet: diffusers' module paths (`lora_unet_down_blocks_0_attentions_0_proj_in`).
  kohya trains these models on its diffusers-named UNet (sd-scripts library/original_unet.py)
  and writes these names; A1111 1.10 converts them to its LDM modules
  (extensions-builtin/Lora/networks.py, convert_diffusers_name_to_compvis, built for the
  SD 1 layout); ComfyUI and Forge map them through unet_to_diffusers (comfy/lora.py
  model_lora_keys_unet, comfy/utils.py); diffusers reads them directly.
- SDXL UNet: LDM/SGM module paths (`lora_unet_output_blocks_2_2_conv`,
  `lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q`), the names kohya's own
  SDXL files carry because its SDXL UNet is LDM-named (library/sdxl_original_unet.py).
  Diffusers' names do not work everywhere here: A1111's converter sends
  `up_blocks_0_upsamplers_0_conv` to output_blocks.2.1 (SD 1's slot; SDXL has an attention
  block there) and drops the layer. LDM names load in A1111 (its "SDXL loras already have
  compvis keys" fallback: `lora_unet` -> `diffusion_model`), ComfyUI and Forge (the
  model's own state-dict names), kohya (its module names) and diffusers
  (lora_conversion_utils._maybe_map_sgm_blocks_to_diffusers maps them back).
- Text encoders: CLIP's original `text_model.encoder.layers.N...` spelling, which all of
  them expect, whatever module nesting the installed transformers uses.

diffusers' package only converts the other way (LDM -> diffusers, for loading), and its
convert_state_dict_to_kohya keeps diffusers' names, so the diffusers -> LDM table is the one
the single-file export uses (loading/layout.py, derived from the UNet config and checked
against diffusers' converter and the released checkpoints).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

UNET_PREFIX = "lora_unet"
# CLIP's top-level submodules that the original layout nests under `text_model.`.
_CLIP_INNER = ("embeddings.", "encoder.", "final_layer_norm")

LayerTensors = Mapping[str, Mapping[str, torch.Tensor]]  # module path -> {key suffix: tensor}


def text_encoder_prefixes(count: int) -> tuple[str, ...]:
    """kohya's text-encoder prefixes: one encoder is `lora_te`, SDXL's two are `lora_te1`/`lora_te2`."""
    if count == 1:
        return ("lora_te",)
    if count == 2:
        return ("lora_te1", "lora_te2")
    raise ValueError(f"kohya LoRA files have no names for {count} text encoders")


def clip_path(path: str) -> str:
    """A CLIP module path in the original `text_model.` layout (transformers 5 flattens CLIPTextModel)."""
    return f"text_model.{path}" if path.startswith(_CLIP_INNER) else path


def kohya_name(prefix: str, path: str) -> str:
    return f"{prefix}_{path.replace('.', '_')}"


def unet_has_ldm_names(config: Mapping[str, Any]) -> bool:
    """A UNet with text_time added conditioning (SDXL base, refiner, inpainting) is named by its LDM
    paths; decided from the UNet itself, since the exporter gets no family. The family's
    FamilyFiles.lora_ldm_names says the same for the header (export/metadata.py); a test holds them equal."""
    return config.get("addition_embed_type") == "text_time"


def unet_module_name(unet: nn.Module, path: str) -> str:
    """The kohya name of the UNet module at diffusers path `path`."""
    config = getattr(unet, "config", {})
    if unet_has_ldm_names(config):
        # Here, not at the top: the loading package brings diffusers' pipelines, which the
        # exporters that never meet such a UNet have no use for.
        from tuitrain.trainer.loading.layout import ldm_unet_module

        path = ldm_unet_module(path, config)
    return kohya_name(UNET_PREFIX, path)


def text_encoder_module_name(prefix: str, path: str) -> str:
    """The kohya name of a text-encoder module at `path` (either CLIP nesting)."""
    return kohya_name(prefix, clip_path(path))


def kohya_named(
    unet: nn.Module, text_encoders: list[nn.Module], layer_tensors: Callable[[nn.Module], LayerTensors],
    denoiser_prefix: str | None = None, denoiser_path: Callable[[str], str] | None = None,
) -> dict[str, torch.Tensor]:
    """Name every adapted layer's tensors the kohya way: `<module name>.<suffix>`.

    Shared by plain LoRA (export/kohya_lora.py) and the LyCORIS types (export/lycoris.py):
    the naming is the same, only the per-layer tensors differ. `text_encoders` are all of
    the model's encoders, trained or not: their count decides the prefixes. `denoiser_prefix`
    (FamilyFiles.lycoris_prefix, e.g. FLUX.1's "lycoris", PixArt's "transformer.") names the denoiser's
    modules by that prefix and their diffusers paths instead of the UNet rules above; `denoiser_path`
    (FamilyAdapter.lycoris_module_path) maps a diffusers path to the one the family's loaders know.
    """
    if denoiser_prefix:
        dotted = denoiser_prefix.endswith(".")  # `transformer.<path>`, not `<prefix>_<path with _>`
        where = denoiser_path or (lambda path: path)  # a family's own module paths (Cascade: ComfyUI's attention)
        names: list[tuple[nn.Module, Callable[[str], str]]] = [
            (unet, lambda path: denoiser_prefix + where(path) if dotted else kohya_name(denoiser_prefix, where(path)))]
    else:
        names = [(unet, lambda path: unet_module_name(unet, path))]
    prefixes = text_encoder_prefixes(len(text_encoders)) if text_encoders else ()
    for prefix, encoder in zip(prefixes, text_encoders):
        names.append((encoder, lambda path, prefix=prefix: text_encoder_module_name(prefix, path)))
    out: dict[str, torch.Tensor] = {}
    for model, name_of in names:
        for path, tensors in layer_tensors(model).items():
            name = name_of(path)
            for suffix, tensor in tensors.items():
                key = f"{name}.{suffix}"
                if key in out:
                    raise ValueError(f"two modules map to the kohya name {name!r}")
                out[key] = tensor
    return out
