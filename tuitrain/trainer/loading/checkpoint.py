"""A single-file checkpoint (.safetensors) as a diffusers pipeline, offline.

Everything a user can get wrong is checked from the file's header first (what kind of
file, which family, which parts it holds, whether its shapes fit the architecture
config); only then does diffusers' `from_single_file` convert the UNet and VAE, with
the config folder given explicitly so it never asks the hub.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from tuitrain.trainer.loading.clip import load_text_encoder
from tuitrain.trainer.loading.compat import dtype_kwargs
from tuitrain.trainer.families import family_files
from tuitrain.trainer.loading.config_folders import read_json, shipped_config_dir
from tuitrain.trainer.loading.errors import ModelLoadError
from tuitrain.trainer.loading.header import SafetensorsHeader, read_header
from tuitrain.trainer.loading.preflight import check_checkpoint, unet_in_channels
from tuitrain.trainer.loading.layout import expected_unet, expected_vae

def _same_shape(got: tuple[int, ...], want: tuple[int, ...], label: str) -> bool:
    # VAE attention projections are 1x1 convolutions in LDM files and linear layers in diffusers files;
    # diffusers reshapes those, but nothing in the UNet.
    return got == want or (label == "VAE" and (got + (1, 1) == want or got == want + (1, 1)))


def _compare(header: SafetensorsHeader, expected: dict[str, tuple[int, ...]], label: str, config_file: Path,
             hint: str, field: str) -> None:
    path = header.path
    missing = []
    for key, want in expected.items():
        got = header.shapes.get(key)
        if got is None:
            missing.append(key)
        elif not _same_shape(tuple(got), want, label):
            raise ModelLoadError(
                f"{field}: '{path}' does not fit the architecture in {config_file}: '{key}' has shape {list(got)} "
                f"in the file, the config expects {list(want)}. {hint}"
            )
    if missing:
        shown = ", ".join(f"'{k}'" for k in missing[:3])
        raise ModelLoadError(
            f"{field}: '{path}' lacks {len(missing)} of the {len(expected)} {label} weights that {config_file} "
            f"describes (e.g. {shown}): not a complete checkpoint of this architecture. {hint}"
        )


def check_fit(header: SafetensorsHeader, config_dir: Path, *, unet: bool, vae: bool, hint: str, field: str) -> None:
    """Every UNet / VAE weight the configs describe must be in the file with its shape (header only)."""
    if unet:
        config_file = config_dir / "unet" / "config.json"
        _compare(header, expected_unet(read_json(config_file, field)), "UNet", config_file, hint, field)
    if vae:
        config_file = config_dir / "vae" / "config.json"
        anchor = "encoder.conv_in.weight"
        key = next((k for k in sorted(header.shapes) if k.endswith(anchor) and "decoder" not in k), None)
        if key is None:
            raise ModelLoadError(f"{field}: '{header.path}' has no VAE encoder weights ('*{anchor}')")
        prefix = key[: -len(anchor)]
        diffusers_names = header.has_prefix(f"{prefix}encoder.down_blocks.")
        expected = expected_vae(read_json(config_file, field), prefix, diffusers_names)
        _compare(header, expected, "VAE", config_file, hint, field)


def check_no_meta(modules: dict[str, Any], path: Path, field: str) -> None:
    """diffusers leaves weights it did not find on the meta device; name them instead of failing later."""
    for name, module in modules.items():
        if not isinstance(module, torch.nn.Module):
            continue
        empty = [n for n, t in [*module.named_parameters(), *module.named_buffers()] if t.device.type == "meta"]
        if empty:
            shown = ", ".join(f"'{n}'" for n in empty[:3])
            raise ModelLoadError(
                f"{field}: '{path}' lacks {len(empty)} {name} weights (e.g. {shown}): not a complete checkpoint "
                "of this architecture"
            )


def _text_encoders(path: Path, family: str, config_dir: Path, index: dict[str, Any], dtype: torch.dtype) -> dict[str, Any]:
    files = family_files(family)
    encoders: dict[str, Any] = {}
    for name, prefix in zip(files.text_encoder_components, files.text_encoder_prefixes):
        class_name = (index.get(name) or [None, None])[1]
        open_clip = prefix.endswith(".model.")
        encoders[name] = load_text_encoder(path, prefix, open_clip, config_dir / name, str(class_name), dtype)
    return encoders


def load_checkpoint(
    path: Path,
    family: str,
    *,
    config_dir: Path,
    shipped: bool,
    vae: Any | None,
    dtype: torch.dtype,
) -> Any:
    """The family's pipeline from a single .safetensors file and a diffusers-format config folder."""
    import diffusers

    field = "model.base"
    header = read_header(path, field)
    check_checkpoint(header, family, has_vae=vae is not None)
    files = family_files(family)
    variant = files.variant(unet_in_channels(header))
    if shipped:
        if variant is not None:
            config_dir = shipped_config_dir(family, variant.name)
        public = variant.public_model if variant is not None else files.public_model
        hint = (
            f"The shipped config is the one of {public}; for a checkpoint of another architecture, "
            "set model.config to a diffusers-format folder that describes it (or check model.family)."
        )
    else:
        hint = "model.config does not describe this checkpoint."
        config_file = config_dir / files.denoiser_component / "config.json"
        channels = read_json(config_file, "model.config").get("in_channels") if config_file.is_file() else None
        if variant is not None and channels != variant.in_channels:
            hint += (f" The file is an {variant.name} model: its {files.denoiser_component}/config.json needs "
                     f"\"in_channels\": {variant.in_channels} (or leave model.config empty to use the shipped configs).")
    check_fit(header, config_dir, unet=True, vae=vae is None, hint=hint, field=field)
    index = read_json(config_dir / "model_index.json", "model.config")
    cls = getattr(diffusers, files.pipeline_class_for({"in_channels": unet_in_channels(header)}))
    try:
        components = _text_encoders(path, family, config_dir, index, dtype)
        if vae is not None:
            components["vae"] = vae
        components.update(files.pipeline_extras)
        pipe = cls.from_single_file(
            # float32 is what diffusers builds anyway; passing it only adds a casting warning per model
            str(path), config=str(config_dir), local_files_only=True,
            **dtype_kwargs(None if dtype == torch.float32 else dtype), **components,
        )
    except ModelLoadError:
        raise
    except Exception as exc:  # safetensors or a converter failing on an odd file: name it, keep the reason
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(
            f"{field}: '{path}' could not be loaded with the configs in '{config_dir}': {reason}"
        ) from exc
    denoiser = family_files(family).denoiser_component
    check_no_meta({denoiser: getattr(pipe, denoiser), "vae": pipe.vae}, path, field)
    return pipe
