"""FLUX.1 from the files ComfyUI users have, offline: a BFL transformer file plus CLIP-L, T5 and VAE files,
or one all-in-one checkpoint.

- The transformer comes from model.base in BFL's layout (flux1-dev.safetensors, community fine-tunes,
  ComfyUI's 'model.diffusion_model.' prefix allowed), converted by layout.from_bfl.
- CLIP-L from model.text_encoder (clip_l.safetensors: transformers' CLIPTextModel names), T5-XXL from
  model.text_encoder_2 (t5xxl_fp16 / t5xxl_fp8_e4m3fn(_scaled): T5EncoderModel names), the VAE from
  model.vae (ae.safetensors: BFL's autoencoder, the LDM names diffusers' converter reads).
- An all-in-one checkpoint (what ComfyUI's CheckpointSave writes for Flux, e.g. Comfy-Org's
  flux1-dev-fp8.safetensors: its supported_models.Flux keeps the text encoders under 'text_encoders.'
  -- clip_l.transformer., t5xxl.transformer. -- and the VAE under 'vae.') gives whichever of those
  the separate keys leave empty.
- A part neither names comes from model.config's diffusers folder (its weights), as before.

The architecture of every part is model.config's folder, or, with model.config empty, FLUX.1-dev's
configs shipped with tuitrain (config_folders.shipped_config_dir), so no hub is needed. Each module
is built on the meta device and the file's tensors assigned in (only the tensors of that part are
read from an all-in-one file), so no second copy of the weights is allocated.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from tuitrain.trainer.families.flux.layout import from_bfl
from tuitrain.trainer.families.flux.parts import PARTS, Source, part_file, plan_parts
from tuitrain.trainer.loading.compat import dtype_kwargs
from tuitrain.trainer.loading.denoiser_file import filled_model, first_line
from tuitrain.trainer.loading.errors import ModelLoadError
from tuitrain.trainer.loading.header import read_header

_NOT_TRANSFORMER = ("text_encoders.", "vae.")


def _transformer_state(path: Path, dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
    """The transformer's tensors of `path` (an all-in-one file's text encoders and VAE are not read), a scaled-fp8
    file's weights multiplied back (loading/t5.py's dequantized: ComfyUI's w * scale_weight)."""
    from safetensors import safe_open

    from tuitrain.trainer.loading.t5 import dequantized

    with safe_open(str(path), framework="pt") as handle:
        raw = {k: handle.get_tensor(k) for k in handle.keys() if not k.startswith(_NOT_TRANSFORMER)}
    return dequantized(raw, path, "model.base", dtype)


def load_transformer(path: Path, folder: Path, dtype: torch.dtype | None = None) -> Any:
    """FluxTransformer2DModel with the file's weights; the architecture from `folder`/transformer, except the
    guidance embedding, which the file decides (schnell files have none)."""
    from diffusers import FluxTransformer2DModel

    field = "model.base"
    try:
        state = from_bfl(_transformer_state(path, dtype))
    except KeyError as exc:
        raise ModelLoadError(f"{field}: '{path}' is not a complete FLUX.1 transformer: it lacks {exc}") from None
    except RuntimeError as exc:  # a fused tensor of the wrong size for its block
        raise ModelLoadError(f"{field}: '{path}' is not a FLUX.1 transformer of a shape tuitrain reads: "
                             f"{first_line(exc)}") from None
    config = dict(FluxTransformer2DModel.load_config(str(folder), subfolder="transformer"))
    config["guidance_embeds"] = any(k.startswith("time_text_embed.guidance_embedder.") for k in state)
    return filled_model(FluxTransformer2DModel, config, state, path=path, folder=folder, family_words="a FLUX.1",
                        dtype=dtype)


def load_vae_part(source: Source, folder: Path) -> Any:
    """The VAE under `source.prefix` (an all-in-one file's 'vae.'), in fp32 as model.vae loads, converted by
    diffusers' LDM converter with `folder`'s vae/config.json."""
    from diffusers import AutoencoderKL

    from tuitrain.trainer.loading.checkpoint import check_fit, check_no_meta
    from tuitrain.trainer.loading.t5 import read_prefixed

    header = read_header(source.path, source.field)
    check_fit(header, folder, unet=False, vae=True, field=source.field,
              hint="Is model.config (or, empty, the shipped FLUX.1-dev config) the architecture of this VAE?")
    state = read_prefixed(source.path, source.prefix, source.field)  # only the VAE's tensors, prefix off
    try:
        vae = AutoencoderKL.from_single_file(state, config=str(folder), subfolder="vae", local_files_only=True)
    except Exception as exc:
        raise ModelLoadError(
            f"{source.field}: the VAE in '{source.path}' could not be loaded: {first_line(exc)}") from exc
    check_no_meta({"VAE": vae}, source.path, source.field)
    return vae


def load_part(component: str, source: Source, folder: Path, dtype: torch.dtype) -> Any:
    """One of CLIP-L / T5 / VAE from its file, with `folder`'s config of it."""
    from tuitrain.trainer.loading.clip import load_text_encoder
    from tuitrain.trainer.loading.t5 import load_t5_encoder

    if component == "text_encoder":
        return load_text_encoder(source.path, source.prefix, False, folder / "text_encoder", "CLIPTextModel", dtype,
                                 field=source.field)
    if component == "text_encoder_2":
        return load_t5_encoder(source.path, source.prefix, folder / "text_encoder_2", dtype, field=source.field)
    return load_vae_part(source, folder)


def load_text_encoder_files(given: Mapping[str, Path], folder: Path, dtype: torch.dtype) -> dict[str, Any]:
    """model.text_encoder / text_encoder_2 for a diffusers-folder base (`folder`: its configs)."""
    parts = {p.component: p for p in PARTS}
    return {name: load_part(name, part_file(parts[name], path), folder, dtype) for name, path in given.items()}


def load_denoiser_file(path: Path, folder: Path, *, vae: Any | None, dtype: torch.dtype,
                       given: Mapping[str, Path] | None = None, shipped: bool = False) -> Any:
    """FluxPipeline from the transformer file `path` and the parts' files (`given` by component, else the
    all-in-one `path`, else `folder`'s weights; `shipped`: `folder` is tuitrain's config-only folder)."""
    from diffusers import FluxPipeline

    sources = plan_parts(path, dict(given or {}), has_vae=vae is not None, folder_has_weights=not shipped)
    components: dict[str, Any] = {"transformer": load_transformer(path, folder, dtype)}
    for name, source in sources.items():
        components[name] = load_part(name, source, folder, dtype)
    if vae is not None:
        components["vae"] = vae
    if shipped and not components["transformer"].config.guidance_embeds:
        components["scheduler"] = schnell_scheduler(folder)
    try:
        return FluxPipeline.from_pretrained(str(folder), local_files_only=True, **dtype_kwargs(dtype), **components)
    except Exception as exc:
        raise ModelLoadError(f"model.config: cannot load the FLUX.1 components from '{folder}': "
                             f"{first_line(exc)}") from exc


def schnell_scheduler(folder: Path) -> Any:
    """The shipped configs are FLUX.1-dev's; a schnell transformer (no guidance embedding) samples with schnell's
    scheduler: `folder`'s with a static shift of 1 and no dynamic shifting."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    from tuitrain.trainer.families.flux.files import SCHNELL_SCHEDULER

    config = FlowMatchEulerDiscreteScheduler.load_config(str(folder), subfolder="scheduler")
    return FlowMatchEulerDiscreteScheduler.from_config(config, **SCHNELL_SCHEDULER)
