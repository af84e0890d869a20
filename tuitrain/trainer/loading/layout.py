"""Weight names of the original single-file layout (LDM / SGM) for diffusers' UNet and VAE.

diffusers converts these names to its own when it loads a single file; this is the
other direction. The export writes files with it, and the loader uses it to list
every weight a file must hold for a given architecture config, so a missing or
misshapen weight is named before diffusers converts anything.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch

from tuitrain.trainer.loading.header import UNET_PREFIX, VAE_PREFIX

_UNET_TOP = {
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "add_embedding.linear_1": "label_emb.0.0",
    "add_embedding.linear_2": "label_emb.0.2",
    "conv_in": "input_blocks.0.0",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
}
_RESNET = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "time_emb_proj": "emb_layers.1",
    "conv_shortcut": "skip_connection",
}
_VAE_ATTENTION = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def _resnet(rest: str) -> str:
    module, _, tail = rest.partition(".")
    return f"{_RESNET.get(module, module)}.{tail}"


def _unet_name(key: str, config: Mapping[str, Any]) -> str:
    """A diffusers UNet2DConditionModel key in the LDM layout (without 'model.diffusion_model.')."""
    per = int(config["layers_per_block"]) + 1  # resnets per up block; down blocks add a downsampler
    module, _, tail = key.rpartition(".")
    if module in _UNET_TOP:
        return f"{_UNET_TOP[module]}.{tail}"
    if m := re.fullmatch(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", key):
        block, kind, j, rest = int(m[1]), m[2], int(m[3]), m[4]
        index = 1 + block * per + j
        return f"input_blocks.{index}.0.{_resnet(rest)}" if kind == "resnets" else f"input_blocks.{index}.1.{rest}"
    if m := re.fullmatch(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)", key):
        return f"input_blocks.{(int(m[1]) + 1) * per}.0.op.{m[2]}"
    if m := re.fullmatch(r"mid_block\.resnets\.(\d+)\.(.+)", key):
        return f"middle_block.{2 * int(m[1])}.{_resnet(m[2])}"
    if m := re.fullmatch(r"mid_block\.attentions\.0\.(.+)", key):
        return f"middle_block.1.{m[1]}"
    if m := re.fullmatch(r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", key):
        block, kind, j, rest = int(m[1]), m[2], int(m[3]), m[4]
        index = block * per + j
        return f"output_blocks.{index}.0.{_resnet(rest)}" if kind == "resnets" else f"output_blocks.{index}.1.{rest}"
    if m := re.fullmatch(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)", key):
        block = int(m[1])
        # The upsampler follows the last resnet, after its attention when the block has one.
        slot = 2 if "CrossAttn" in config["up_block_types"][block] else 1
        return f"output_blocks.{block * per + per - 1}.{slot}.conv.{m[2]}"
    raise ValueError(f"no LDM name for UNet weight {key!r}")


def ldm_unet_module(path: str, config: Mapping[str, Any]) -> str:
    """A diffusers UNet module path in the LDM layout, e.g. up_blocks.0.upsamplers.0.conv -> output_blocks.2.2.conv
    for SDXL (kohya's SDXL LoRA files name modules this way: export/naming.py)."""
    return _unet_name(f"{path}.weight", config).removesuffix(".weight")


def _vae_name(key: str, num_blocks: int) -> str:
    """A diffusers AutoencoderKL key in the LDM layout (without 'first_stage_model.')."""
    if m := re.fullmatch(r"(encoder|decoder)\.conv_norm_out\.(.+)", key):
        return f"{m[1]}.norm_out.{m[2]}"
    if m := re.fullmatch(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
        return f"encoder.down.{m[1]}.block.{m[2]}.{m[3].replace('conv_shortcut', 'nin_shortcut')}"
    if m := re.fullmatch(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)", key):
        return f"encoder.down.{m[1]}.downsample.conv.{m[2]}"
    if m := re.fullmatch(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
        # The decoder's blocks run in the opposite order in the LDM layout.
        return f"decoder.up.{num_blocks - 1 - int(m[1])}.block.{m[2]}.{m[3].replace('conv_shortcut', 'nin_shortcut')}"
    if m := re.fullmatch(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)", key):
        return f"decoder.up.{num_blocks - 1 - int(m[1])}.upsample.conv.{m[2]}"
    if m := re.fullmatch(r"(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.+)", key):
        return f"{m[1]}.mid.block_{int(m[2]) + 1}.{m[3].replace('conv_shortcut', 'nin_shortcut')}"
    if m := re.fullmatch(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.+)\.(weight|bias)", key):
        if m[2] in _VAE_ATTENTION:
            return f"{m[1]}.mid.attn_1.{_VAE_ATTENTION[m[2]]}.{m[3]}"
    if re.fullmatch(r"(encoder|decoder)\.conv_(in|out)\.(weight|bias)|(post_)?quant_conv\.(weight|bias)", key):
        return key
    raise ValueError(f"no LDM name for VAE weight {key!r}")


def unet_to_ldm(state: Mapping[str, torch.Tensor], config: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    return {UNET_PREFIX + _unet_name(k, config): v for k, v in state.items()}


def vae_to_ldm(state: Mapping[str, torch.Tensor], config: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        name = _vae_name(key, len(config["up_block_types"]))
        if ".mid.attn_1." in name and name.endswith("weight") and value.ndim == 2:
            value = value[:, :, None, None]  # the LDM VAE's attention projections are 1x1 convolutions
        out[VAE_PREFIX + name] = value
    return out


def _on_meta(cls: Any, config: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    from accelerate import init_empty_weights

    with init_empty_weights():  # shapes only: a full-size SDXL UNet costs no memory
        return cls.from_config(dict(config)).state_dict()


def expected_unet(config: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """Every UNet weight a single file must hold for this UNet config: LDM name -> shape."""
    from diffusers import UNet2DConditionModel

    return {k: tuple(v.shape) for k, v in unet_to_ldm(_on_meta(UNet2DConditionModel, config), config).items()}


def expected_vae(config: Mapping[str, Any], prefix: str, diffusers_names: bool) -> dict[str, tuple[int, ...]]:
    """Every VAE weight for this VAE config, in the LDM or the diffusers layout, under `prefix`."""
    from diffusers import AutoencoderKL

    state = _on_meta(AutoencoderKL, config)
    if diffusers_names:
        return {prefix + k: tuple(v.shape) for k, v in state.items()}
    return {prefix + k.removeprefix(VAE_PREFIX): tuple(v.shape) for k, v in vae_to_ldm(state, config).items()}
