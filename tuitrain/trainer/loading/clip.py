"""CLIP text encoders between single-file layouts and transformers' modules.

Single files hold text encoders in two layouts: transformers' own names under a
prefix (SD 1.x 'cond_stage_model.transformer.', SDXL's first encoder
'conditioner.embedders.0.transformer.'), and OpenCLIP's (SD 2.x
'cond_stage_model.model.', SDXL's second encoder 'conditioner.embedders.1.model.'),
which fuses q/k/v into one in_proj and stores the projection as a plain matrix.
Both directions live here, so the export is the exact inverse of the import.

The loader builds text encoders itself rather than leaving them to diffusers:
diffusers tells SDXL's two encoders apart by comparing their widths (equal in tiny
models) and leaves weights it did not find uninitialised; here every weight is
required, and a missing or misshapen one is named.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import torch

from tuitrain.trainer.loading.errors import ModelLoadError

# Inside one transformer layer: transformers name -> OpenCLIP name.
_OPEN_CLIP_LAYER = {
    "layer_norm1": "ln_1",
    "layer_norm2": "ln_2",
    "mlp.fc1": "mlp.c_fc",
    "mlp.fc2": "mlp.c_proj",
    "self_attn.out_proj": "attn.out_proj",
}
_OPEN_CLIP_TOP = {
    "embeddings.token_embedding.weight": "token_embedding.weight",
    "embeddings.position_embedding.weight": "positional_embedding",
    "final_layer_norm.weight": "ln_final.weight",
    "final_layer_norm.bias": "ln_final.bias",
}
_QKV = ("q", "k", "v")
_HF_LAYER = re.compile(r"encoder\.layers\.(\d+)\.(.+)\.(weight|bias)")
_OC_LAYER = re.compile(r"transformer\.resblocks\.(\d+)\.(.+)\.(weight|bias)")
_OC_IN_PROJ = re.compile(r"transformer\.resblocks\.(\d+)\.attn\.in_proj_(weight|bias)")
# Not weights: buffers some writers store, which transformers recreates.
_SKIP = ("embeddings.position_ids",)


def plain_name(key: str) -> str:
    """A transformers CLIP key without the 'text_model.' wrapper (newer CLIPTextModel has none)."""
    return key.removeprefix("text_model.")


def hf_to_open_clip(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """transformers CLIP text weights -> OpenCLIP names (no prefix)."""
    out: dict[str, torch.Tensor] = {}
    qkv: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        if key == "text_projection.weight":
            out["text_projection"] = value.t().contiguous()  # Linear [proj, hidden] -> matrix [hidden, proj]
            continue
        name = plain_name(key)
        if name in _SKIP:
            continue
        if name in _OPEN_CLIP_TOP:
            out[_OPEN_CLIP_TOP[name]] = value
            continue
        match = _HF_LAYER.fullmatch(name)
        if match is None:
            raise ValueError(f"no OpenCLIP name for text encoder weight {key!r}")
        layer, module, kind = match.groups()
        if module in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"):
            qkv.setdefault((layer, kind), {})[module[len("self_attn.")]] = value
        elif module in _OPEN_CLIP_LAYER:
            out[f"transformer.resblocks.{layer}.{_OPEN_CLIP_LAYER[module]}.{kind}"] = value
        else:
            raise ValueError(f"no OpenCLIP name for text encoder weight {key!r}")
    for (layer, kind), parts in qkv.items():
        out[f"transformer.resblocks.{layer}.attn.in_proj_{kind}"] = torch.cat([parts[p] for p in _QKV])
    return out


def open_clip_to_hf(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """OpenCLIP text weights (no prefix) -> plain transformers names; other keys are dropped."""
    top = {v: k for k, v in _OPEN_CLIP_TOP.items()}
    layer_names = {v: k for k, v in _OPEN_CLIP_LAYER.items()}
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key == "text_projection":
            out["text_projection.weight"] = value.t().contiguous()
        elif key in top:
            out[top[key]] = value
        elif (fused := _OC_IN_PROJ.fullmatch(key)) is not None:
            layer, kind = fused.groups()
            for part, chunk in zip(_QKV, value.chunk(3, dim=0)):
                out[f"encoder.layers.{layer}.self_attn.{part}_proj.{kind}"] = chunk.clone()  # own storage: no two weights share memory
        elif (match := _OC_LAYER.fullmatch(key)) is not None and match.group(2) in layer_names:
            layer, module, kind = match.groups()
            out[f"encoder.layers.{layer}.{layer_names[module]}.{kind}"] = value
    return out


def hf_to_transformers_layout(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """transformers CLIP text weights -> the single-file transformers layout ('text_model.*')."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        name = plain_name(key)
        if name in _SKIP:
            continue
        out[key if key.startswith("text_projection") else f"text_model.{name}"] = value
    return out


def _read_prefixed(path: Path, prefix: str) -> dict[str, torch.Tensor]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return {key[len(prefix):]: handle.get_tensor(key) for key in handle.keys() if key.startswith(prefix)}


def load_text_encoder(
    path: Path,
    prefix: str,
    open_clip: bool,
    config_folder: Path,
    class_name: str,
    dtype: torch.dtype,
    field: str = "model.base",
) -> torch.nn.Module:
    """The text encoder stored under `prefix` in the single file `path`, all weights required."""
    import transformers
    from accelerate import init_empty_weights

    if class_name not in ("CLIPTextModel", "CLIPTextModelWithProjection"):
        raise ModelLoadError(f"{field}: text encoder class {class_name!r} in {config_folder.parent} is not a CLIP text model")
    cls = getattr(transformers, class_name)
    config = transformers.CLIPTextConfig.from_pretrained(str(config_folder), local_files_only=True)
    with init_empty_weights():  # parameters on the meta device: nothing allocated twice
        model = cls(config)
    expected = model.state_dict()
    raw = _read_prefixed(path, prefix)
    found = open_clip_to_hf(raw) if open_clip else {plain_name(k): v for k, v in raw.items()}
    by_plain = {plain_name(k): k for k in expected}
    state: dict[str, torch.Tensor] = {}
    missing: list[str] = []
    for plain, key in by_plain.items():
        if plain not in found:
            missing.append(plain)
            continue
        value, want = found[plain], expected[key]
        if tuple(value.shape) != tuple(want.shape):
            raise ModelLoadError(
                f"{field}: '{path}' does not fit the text encoder config {config_folder / 'config.json'}: "
                f"weight '{plain}' (under '{prefix}') has shape {list(value.shape)} in the file, the config expects "
                f"{list(want.shape)}. Is model.family right?"
            )
        state[key] = value.to(dtype) if value.is_floating_point() else value
    if missing:
        shown = ", ".join(f"'{m}'" for m in missing[:3])
        raise ModelLoadError(
            f"{field}: '{path}' lacks {len(missing)} text encoder weights under '{prefix}' (e.g. {shown}): "
            "not a complete checkpoint of this family"
        )
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval()
