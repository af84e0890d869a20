"""A T5 encoder (T5-XXL v1.1, as FLUX.1 / SD3 / PixArt use it) from one .safetensors file, offline.

The files people have are transformers' T5EncoderModel state dict, alone (ComfyUI's
t5xxl_fp16.safetensors, t5xxl_fp8_e4m3fn.safetensors) or under a prefix in an all-in-one checkpoint
(ComfyUI's 'text_encoders.t5xxl.transformer.'). The module is built from a config folder on the meta
device and the file's tensors are assigned in, cast to the compute dtype (an fp8 file costs one cast
copy, never an fp32 one); every weight the config describes is required, and a missing or misshapen
one is named with the key and the file.

ComfyUI's "scaled fp8" files (t5xxl_fp8_e4m3fn_scaled.safetensors) store each linear weight as
w / s in float8 with s beside it ('<layer>.scale_weight'; a 'scaled_fp8' marker tensor): the weight
read here is w * s, what ComfyUI's scaled_fp8_ops multiply back in. Other quantized layouts (per-layer
'weight_scale' tensors, GGUF) are refused in one line rather than read as if they were plain weights.
"""

from __future__ import annotations

from pathlib import Path

import torch

from tuitrain.trainer.loading.errors import ModelLoadError

# What transformers' T5EncoderModel ties to `shared.weight` (files hold one or both names).
_EMBEDDINGS = ("shared.weight", "encoder.embed_tokens.weight")
# Not weights: ComfyUI's scaled-fp8 marker, and the fp8-matmul input scales only fp8 kernels use.
_IGNORED_SUFFIXES = ("scaled_fp8", ".scale_input")
_UNREAD_QUANT_SUFFIXES = (".weight_scale", ".input_scale", ".comfy_quant", ".weight_scale_2")


def read_prefixed(path: Path, prefix: str, field: str) -> dict[str, torch.Tensor]:
    """The tensors under `prefix` in `path`, with the prefix taken off (only those are read)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return {key[len(prefix):]: handle.get_tensor(key) for key in handle.keys() if key.startswith(prefix)}
    except Exception as exc:  # safetensors' own refusals: name the file
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"{field}: cannot read '{path}': {reason}") from exc


def dequantized(raw: dict[str, torch.Tensor], path: Path, field: str,
                dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
    """`raw` in `dtype`, ComfyUI's scaled-fp8 weights multiplied back (w * scale_weight, in `dtype` as ComfyUI
    does it; fp32 when `dtype` is None, which leaves the other tensors as stored), markers dropped. FLUX.1's
    transformer files come in the same scaled-fp8 form (flux/loading.py reads them through here too)."""
    odd = sorted(k for k in raw if k.endswith(_UNREAD_QUANT_SUFFIXES))
    if odd:
        raise ModelLoadError(
            f"{field}: '{path}' is quantized with per-layer scales tuitrain does not read (e.g. '{odd[0]}'); "
            "give an fp16 / bf16 / plain fp8 file"
        )
    out: dict[str, torch.Tensor] = {}
    for key, value in raw.items():
        if key.endswith(_IGNORED_SUFFIXES) or key.endswith(".scale_weight"):
            continue
        scale = raw.get(key.removesuffix(".weight") + ".scale_weight") if key.endswith(".weight") else None
        into = dtype or (torch.float32 if scale is not None else None)
        if into is not None and value.is_floating_point():
            value = value.to(into)
        out[key] = value if scale is None else value * scale.to(value.dtype)
    return out


def load_t5_encoder(path: Path, prefix: str, config_folder: Path, dtype: torch.dtype,
                    field: str = "model.text_encoder_2") -> torch.nn.Module:
    """T5EncoderModel (config from `config_folder`) holding the weights stored under `prefix` in `path`."""
    import transformers
    from accelerate import init_empty_weights

    try:
        config = transformers.T5Config.from_pretrained(str(config_folder), local_files_only=True)
    except Exception as exc:
        raise ModelLoadError(f"{field}: cannot read the T5 config in '{config_folder}': {exc}") from exc
    with init_empty_weights():  # parameters on the meta device: nothing allocated twice
        model = transformers.T5EncoderModel(config)
    expected = model.state_dict()
    found = dequantized(read_prefixed(path, prefix, field), path, field, dtype)
    embedding = next((found[name] for name in _EMBEDDINGS if name in found), None)
    state: dict[str, torch.Tensor] = {}
    missing: list[str] = []
    for key, want in expected.items():
        value = embedding if key in _EMBEDDINGS else found.get(key)
        if value is None:
            missing.append(key)
            continue
        if tuple(value.shape) != tuple(want.shape):
            raise ModelLoadError(
                f"{field}: '{path}' does not fit the T5 encoder config {config_folder / 'config.json'}: weight "
                f"'{key}'{f' (under {prefix!r})' if prefix else ''} has shape {list(value.shape)} in the file, the "
                f"config expects {list(want.shape)}"
            )
        state[key] = value
    if missing:
        shown = ", ".join(f"'{m}'" for m in missing[:3])
        where = f" under '{prefix}'" if prefix else ""
        raise ModelLoadError(
            f"{field}: '{path}' lacks {len(missing)} of the {len(expected)} T5 encoder weights{where} (e.g. {shown}): "
            "not a T5 encoder file (transformers' T5EncoderModel names)"
        )
    if embedding is not None:  # one tensor for both names, as the tied module holds it
        shared = state[_EMBEDDINGS[0]]
        state[_EMBEDDINGS[1]] = shared
    model.load_state_dict(state, strict=True, assign=True)
    model.tie_weights()
    return model.eval()
