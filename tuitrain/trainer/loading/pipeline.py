"""load_pipeline: model.base (hub id, diffusers folder or .safetensors file) as a pipeline.

Local paths never touch the network: folders load with local_files_only, and single
files get their architecture from model.config or from the public configs shipped
with tuitrain. Only a hub id uses the hub, and when it cannot be reached the message
says so instead of showing a connection traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from tuitrain.families import FAMILIES
from tuitrain.trainer.families import family_files, home_module
from tuitrain.trainer.loading.checkpoint import check_fit, check_no_meta, load_checkpoint
from tuitrain.trainer.loading.compat import dtype_kwargs
from tuitrain.trainer.loading.config_folders import check_config_dir, shipped_config_dir
from tuitrain.trainer.loading.errors import ModelLoadError
from tuitrain.trainer.loading.header import read_header
from tuitrain.trainer.loading.quantized import weight_files
from tuitrain.trainer.loading.preflight import (
    ModelSettings,
    check_denoiser_file,
    check_folder,
    check_hub,
    check_index_family,
    part_files,
    refuse_single_file,
    resolve_source,
    vae_file_header,
    vae_subfolder,
)

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline

# The text encoder files (model.text_encoder / text_encoder_2) a loaded pipeline's encoders came from, kept on it
# so the family adapter can put them in the cache identity (the text cache must not outlive a swapped T5).
PART_FILES = "tuitrain_part_files"

def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _hub_unreachable(exc: BaseException) -> bool:
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return True
    names = " ".join(type(e).__name__ for e in _chain(exc))
    return any(word in names for word in ("Connect", "Offline", "LocalEntryNotFound", "Timeout"))


def _hub_error(field: str, hub_id: str, exc: Exception) -> ModelLoadError:
    if _hub_unreachable(exc):
        return ModelLoadError(
            f"{field}: '{hub_id}' is not a local file or folder and the hub is unreachable (HF_HUB_OFFLINE=1 "
            "or no network); download it first or give a local path"
        )
    names = " ".join(type(e).__name__ for e in _chain(exc))
    if "RepositoryNotFound" in names or "GatedRepo" in names:
        return ModelLoadError(
            f"{field}: '{hub_id}' is not a local file or folder, and the hub has no model of that name that this "
            "machine may read (a typo, or a private / gated model: accept its licence and log in with `hf auth login`)"
        )
    return ModelLoadError(f"{field}: cannot load '{hub_id}' from the hub: {_first_line(exc)}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _pipeline_class(family: str, unet_config: dict[str, Any] | None = None, declared: str | None = None) -> Any:
    """The family's pipeline, or its variant's for a denoiser with the variant's input channels (the denoiser
    decides, not the class name), or the sibling pipeline model_index.json declares (PixArt-α's)."""
    import diffusers

    return getattr(diffusers, family_files(family).pipeline_class_for(unet_config, declared))


def _extras(family: str) -> dict[str, Any]:
    return dict(family_files(family).pipeline_extras)


def _component_dtypes(dtype: torch.dtype) -> torch.dtype | dict[str, torch.dtype]:
    """from_pretrained's dtype: `dtype` for the denoiser and text encoders, fp32 for the VAE (place() keeps it
    there: SDXL's VAE overflows in fp16), so a VAE stored in fp32 is not rounded on the way."""
    return dtype if dtype == torch.float32 else {"default": dtype, "vae": torch.float32}


def _from_folder(folder: Path, family: str, variant: str, vae: Any | None, dtype: torch.dtype,
                 quantize: QuantizeOnLoad | None = None, encoder_files: dict[str, Path] | None = None) -> Any:
    index, unet_config = check_folder(folder, family)
    kwargs = _extras(family)
    if vae is not None:
        kwargs["vae"] = vae
    if encoder_files:  # the folder's own text encoder configs describe the files given for them
        kwargs.update(home_module(family, "loading").load_text_encoder_files(encoder_files, folder, dtype))
    component = family_files(family).denoiser_component
    if quantize is not None and not variant and weight_files(folder / component):
        kwargs[component] = _quantized_denoiser(folder / component, quantize)
    try:
        return _pipeline_class(family, unet_config, index.get("_class_name")).from_pretrained(
            str(folder), local_files_only=True, **dtype_kwargs(_component_dtypes(dtype)), variant=variant or None,
            **kwargs
        )
    except Exception as exc:
        hint = f" (model.variant = '{variant}': are there weight files of that variant?)" if variant else ""
        raise ModelLoadError(f"model.base: cannot load the diffusers folder '{folder}': {_first_line(exc)}{hint}") from exc


def _from_hub(hub_id: str, family: str, variant: str, vae: Any | None, dtype: torch.dtype,
              quantize: QuantizeOnLoad | None = None) -> Any:
    from diffusers import DiffusionPipeline, UNet2DConditionModel

    # One quick request first: without it, no network means five retries per file and half a minute of noise.
    local = {"local_files_only": True} if check_hub(hub_id, "model.base").local_only else {}
    try:
        index = DiffusionPipeline.load_config(hub_id, **local)
        component = family_files(family).denoiser_component
        # load_config reads any component's config.json; the class only names the file.
        unet_config = UNet2DConditionModel.load_config(hub_id, subfolder=component, **local) if component in index else None
    except Exception as exc:
        raise _hub_error("model.base", hub_id, exc) from exc
    check_index_family(dict(index), dict(unet_config or {}), family, f"'{hub_id}'")
    kwargs = _extras(family)
    if vae is not None:
        kwargs["vae"] = vae
    cls = _pipeline_class(family, dict(unet_config or {}), index.get("_class_name"))
    if quantize is not None and not variant:
        # Fetch (or find in the cache) what from_pretrained would, then load that folder as a local one: its
        # denoiser is quantized as it loads instead of being read whole first.
        try:
            folder = Path(cls.download(hub_id, **local))
        except Exception as exc:
            raise _hub_error("model.base", hub_id, exc) from exc
        return _from_folder(folder, family, variant, vae, dtype, quantize)
    try:
        return cls.from_pretrained(hub_id, **dtype_kwargs(_component_dtypes(dtype)), variant=variant or None, **local,
                                   **kwargs)
    except Exception as exc:
        raise _hub_error("model.base", hub_id, exc) from exc


def _config_folder(model_cfg: ModelSettings, family: str, config_dir: Path) -> tuple[Path, bool]:
    """(architecture config folder for single files, whether it is the shipped one)."""
    value = (model_cfg.config or "").strip()
    if not value:
        return shipped_config_dir(family), True
    folder = Path(value).expanduser()
    if not folder.is_absolute():
        folder = config_dir / folder
    check_config_dir(folder, family)
    return folder, False


def load_vae(model_cfg: ModelSettings, family: str, config_dir: Path, dtype: torch.dtype) -> Any:
    """model.vae: a separate VAE from a folder, a single file or the hub."""
    from diffusers import AutoencoderKL

    field = "model.vae"
    source = resolve_source(model_cfg.vae, config_dir, field)
    if source.kind == "hub":
        local = {"local_files_only": True} if check_hub(source.hub_id, field, filename="config.json").local_only else {}
        try:
            return AutoencoderKL.from_pretrained(source.hub_id, **dtype_kwargs(dtype), **local)
        except Exception as exc:
            raise _hub_error(field, source.hub_id, exc) from exc
    assert source.path is not None
    path = source.path
    if source.kind == "folder":
        subfolder = vae_subfolder(path, field)
        try:
            return AutoencoderKL.from_pretrained(str(path), subfolder=subfolder, local_files_only=True, **dtype_kwargs(dtype))
        except Exception as exc:
            raise ModelLoadError(f"{field}: cannot load the VAE folder '{path}': {_first_line(exc)}") from exc
    header = vae_file_header(path, field)
    folder, shipped = _config_folder(model_cfg, family, config_dir)
    hint = "The VAE config is the shipped one of this family; check model.family." if shipped else (
        "model.config does not describe this VAE.")
    check_fit(header, folder, unet=False, vae=True, hint=hint, field=field)
    try:
        vae = AutoencoderKL.from_single_file(
            str(path), config=str(folder), subfolder="vae", local_files_only=True, **dtype_kwargs(dtype)
        )
    except Exception as exc:
        raise ModelLoadError(f"{field}: '{path}' could not be loaded as a VAE: {_first_line(exc)}") from exc
    check_no_meta({"VAE": vae}, path, field)
    return vae


def _set_prediction(pipe: Any, prediction: str) -> None:
    """model.prediction (or model.flavour's) other than auto overrides the scheduler config (e.g. epsilon
    for SD 2.x 512-base). Flow-matching schedulers have no prediction type to set."""
    if prediction in ("", "auto", "flow"):
        return
    scheduler = pipe.scheduler
    if scheduler.config.get("prediction_type") != prediction:
        pipe.scheduler = type(scheduler).from_config(scheduler.config, prediction_type=prediction)


def quiet_progress_bars() -> None:
    """Turn off diffusers' and transformers' per-component progress bars ("Loading weights", each
    sampling step): the trainer reports progress as events, and bars garble the headless display and
    trainer.log. Hub downloads keep theirs (huggingface_hub's own bars), which are worth watching."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    from huggingface_hub.utils import enable_progress_bars

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    enable_progress_bars()  # transformers' switch turns the hub's download bars off too


@dataclass(frozen=True)
class QuantizeOnLoad:
    """model.quantize applied while the denoiser loads (loading/quantized.py): mode, compute dtype, device."""

    mode: str
    compute_dtype: torch.dtype
    device: torch.device


def _quantized_denoiser(folder: Path, quantize: QuantizeOnLoad) -> Any:
    import json

    import diffusers

    from tuitrain.trainer.loading.quantized import load_quantized

    cls = getattr(diffusers, json.loads((folder / "config.json").read_text(encoding="utf-8"))["_class_name"])
    try:
        return load_quantized(cls, folder, quantize.mode, quantize.compute_dtype, quantize.device)
    except ValueError as exc:
        raise ModelLoadError(f"model.base: cannot load the denoiser in '{folder}': {exc}") from exc


def load_pipeline(
    model_cfg: ModelSettings, family: str, *, config_dir: Path, dtype: torch.dtype = torch.float32,
    quantize: QuantizeOnLoad | None = None,
) -> DiffusionPipeline:
    """The diffusers pipeline for model.base, with model.vae / variant / prediction / config applied.

    `config_dir` is the folder of the config file: relative paths start there. Every
    failure a user can cause raises ModelLoadError naming the key and the file. `dtype` is what the
    denoiser and text encoders load in (the trainer's compute dtype, unless a fine-tune keeps them in
    fp32): a run never holds an fp32 copy it casts down later. The VAE loads in fp32 from a folder or
    the hub (from a single file, in `dtype`). `quantize`: a diffusers folder's (or hub model's) denoiser is
    quantized as it loads (single files are quantized by place() after loading).
    """
    quiet_progress_bars()
    if family not in FAMILIES:
        raise ModelLoadError(f"model.family: tuitrain cannot load {family!r} models yet")
    if not (model_cfg.base or "").strip():
        raise ModelLoadError("model.base: not set; give a hub id, a diffusers folder or a .safetensors file")
    source = resolve_source(model_cfg.base, config_dir, "model.base")
    encoder_files, _ = part_files(model_cfg, family, source, config_dir)  # as inspect_base checks them
    has_vae = bool((model_cfg.vae or "").strip())
    part_folder = None  # a denoiser file's (FLUX.1's): where its architecture and the parts not given come from
    if source.kind == "file" and not family_files(family).single_file:
        assert source.path is not None
        refuse_single_file(family, source.path)
        part_folder = check_denoiser_file(read_header(source.path, "model.base"), family, model_cfg.config, config_dir)
        # Where each other part comes from, from headers: a part found nowhere stops here, before any weight loads.
        family_files(family).denoiser_file_parts(source.path, encoder_files, has_vae=has_vae,
                                                 folder_has_weights=bool((model_cfg.config or "").strip()))
    vae = load_vae(model_cfg, family, config_dir, torch.float32) if has_vae else None
    variant = (model_cfg.variant or "").strip()
    if source.kind == "folder":
        assert source.path is not None
        pipe = _from_folder(source.path, family, variant, vae, dtype, quantize, encoder_files)
    elif source.kind == "file":
        assert source.path is not None
        refuse_single_file(family, source.path)
        if family_files(family).single_file:
            folder, shipped = _config_folder(model_cfg, family, config_dir)
            pipe = load_checkpoint(source.path, family, config_dir=folder, shipped=shipped, vae=vae, dtype=dtype)
        else:  # the denoiser in its own layout (FLUX.1's BFL file); the other parts from their files or model.config
            assert part_folder is not None
            # Only FLUX.1's loader takes part files and the shipped config folder (the model section refuses
            # text encoder files for other families; check_denoiser_file ships configs to no other one).
            parts: dict[str, Any] = {"given": encoder_files} if encoder_files else {}
            if not (model_cfg.config or "").strip():
                parts["shipped"] = True
            pipe = home_module(family, "loading").load_denoiser_file(source.path, part_folder, vae=vae, dtype=dtype,
                                                                     **parts)
    else:
        pipe = _from_hub(source.hub_id, family, variant, vae, dtype, quantize)
    if encoder_files:
        setattr(pipe, PART_FILES, tuple(sorted(encoder_files.values())))
    prediction = model_cfg.prediction
    flavour = (getattr(model_cfg, "flavour", "") or "").strip()
    if flavour and prediction in ("", "auto"):
        prediction = FAMILIES[family].flavour(flavour).prediction
    _set_prediction(pipe, prediction)
    return pipe
