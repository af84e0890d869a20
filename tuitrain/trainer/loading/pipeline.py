"""load_pipeline: model.base (hub id, diffusers folder or .safetensors file) as a pipeline.

Local paths never touch the network: folders load with local_files_only, and single
files get their architecture from model.config or from the public configs shipped
with tuitrain. Only a hub id uses the hub, and when it cannot be reached the message
says so instead of showing a connection traceback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch

from tuitrain.trainer.loading.checkpoint import SD_EXTRAS, check_fit, check_no_meta, load_checkpoint
from tuitrain.trainer.loading.compat import dtype_kwargs
from tuitrain.trainer.loading.config_folders import (
    INPAINT_CHANNELS,
    INPAINT_PIPELINE_CLASS,
    PIPELINE_CLASS,
    check_config_dir,
    read_json,
    shipped_config_dir,
)
from tuitrain.trainer.loading.errors import ModelLoadError
from tuitrain.trainer.loading.header import CONTEXT_DIM_FAMILY, FAMILY_WORDS, detect, read_header

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline

PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".pkl")
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")
_FILE_SUFFIXES = (".safetensors", ".sft", *PICKLE_SUFFIXES)


class ModelSettings(Protocol):
    """The model section of the config (tuitrain.config.schema.ModelSection) as seen here."""

    base: str
    vae: str
    variant: str
    prediction: str
    config: str


@dataclass(frozen=True)
class Source:
    kind: str  # folder | file | hub
    path: Path | None = None
    hub_id: str = ""


def resolve_source(value: str, config_dir: Path, field: str) -> Source:
    """Where a model value points: an existing folder or file (relative to the config), or a hub id."""
    raw = value.strip()
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = config_dir / path
    if path.is_dir():
        return Source("folder", path)
    if path.is_file():
        if path.suffix.lower() in PICKLE_SUFFIXES:
            raise pickle_refused(path, field)
        return Source("file", path)
    looks_like_path = raw.startswith((".", "/", "~", "\\")) or raw.lower().endswith(_FILE_SUFFIXES)
    if _HUB_ID.fullmatch(raw) and not looks_like_path:
        return Source("hub", hub_id=raw)
    where = "" if Path(raw).expanduser().is_absolute() else f" (relative paths start at the config file's folder, {config_dir})"
    raise ModelLoadError(f"{field}: file or folder not found: '{path}'{where}")


def pickle_refused(path: Path, field: str) -> ModelLoadError:
    target = path.with_suffix(".safetensors")
    return ModelLoadError(
        f"{field}: '{path}' is a pickle checkpoint ({path.suffix}); tuitrain does not load pickle files "
        "(loading one can run code). Convert it once to .safetensors, e.g.\n"
        f"  python -c \"import torch, safetensors.torch as st; sd = torch.load('{path}', map_location='cpu', "
        "weights_only=True); sd = sd.get('state_dict', sd); st.save_file({k: v.contiguous() for k, v in sd.items() "
        f"if isinstance(v, torch.Tensor)}}, '{target}')\"\n"
        f"and set {field} to '{target}'."
    )


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


def _families_of_index(index: dict[str, Any], unet_config: dict[str, Any] | None) -> tuple[str, ...]:
    """The families a model_index.json can be (SD 1.x and 2.x share a class: the UNet width decides)."""
    declared = index.get("_class_name")
    if declared in ("StableDiffusionXLPipeline", "StableDiffusionXLInpaintPipeline"):
        return ("sdxl",)
    if declared in ("StableDiffusionPipeline", "StableDiffusionInpaintPipeline"):
        dim = (unet_config or {}).get("cross_attention_dim")
        if dim in (768, 1024):
            return (CONTEXT_DIM_FAMILY[dim],)
        return ("sd15", "sd2")  # unusual width (e.g. a tiny test model): the class must do
    return ()


def _check_index_family(index: dict[str, Any], unet_config: dict[str, Any] | None, family: str, where: str) -> None:
    found = _families_of_index(index, unet_config)
    if not found:
        raise ModelLoadError(
            f"model.base: {where} is a {index.get('_class_name')} model; model.family = '{family}' needs a "
            f"{PIPELINE_CLASS[family]}"
        )
    if family not in found:
        words = " or ".join(FAMILY_WORDS[f] for f in found)
        names = " or ".join(f"'{f}'" for f in found)
        raise ModelLoadError(
            f"model.base: {where} looks like an {words} model, but model.family = '{family}'; "
            f"set model.family = {names}"
        )


def _pipeline_class(family: str, unet_config: dict[str, Any] | None = None) -> Any:
    """The family's pipeline; its inpainting pipeline for a 9-channel UNet (the UNet decides, not the class name)."""
    import diffusers

    if unet_config and unet_config.get("in_channels") == INPAINT_CHANNELS:
        return getattr(diffusers, INPAINT_PIPELINE_CLASS[family])
    return getattr(diffusers, PIPELINE_CLASS[family])


def _extras(family: str) -> dict[str, Any]:
    return dict(SD_EXTRAS) if family in ("sd15", "sd2") else {}


def _from_folder(folder: Path, family: str, variant: str, vae: Any | None, dtype: torch.dtype) -> Any:
    index_file = folder / "model_index.json"
    if not index_file.is_file():
        hint = ""
        if (folder / "config.json").is_file():
            hint = " It holds config.json: is it one component (unet/, vae/) of a model? Give the model's top folder."
        elif files := sorted(folder.glob("*.safetensors"))[:3]:
            hint = f" It holds {', '.join(f.name for f in files)}: set model.base to one of those files."
        raise ModelLoadError(
            f"model.base: '{folder}' is a folder without model_index.json, so not a diffusers model folder.{hint}"
        )
    index = read_json(index_file, "model.base")
    unet_file = folder / "unet" / "config.json"
    unet_config = read_json(unet_file, "model.base") if unet_file.is_file() else None
    _check_index_family(index, unet_config, family, f"'{folder}'")
    kwargs = _extras(family)
    if vae is not None:
        kwargs["vae"] = vae
    try:
        return _pipeline_class(family, unet_config).from_pretrained(
            str(folder), local_files_only=True, **dtype_kwargs(dtype), variant=variant or None, **kwargs
        )
    except Exception as exc:
        hint = f" (model.variant = '{variant}': are there weight files of that variant?)" if variant else ""
        raise ModelLoadError(f"model.base: cannot load the diffusers folder '{folder}': {_first_line(exc)}{hint}") from exc


def _from_hub(hub_id: str, family: str, variant: str, vae: Any | None, dtype: torch.dtype) -> Any:
    from diffusers import DiffusionPipeline, UNet2DConditionModel

    try:
        index = DiffusionPipeline.load_config(hub_id)
        unet_config = UNet2DConditionModel.load_config(hub_id, subfolder="unet") if "unet" in index else None
    except Exception as exc:
        raise _hub_error("model.base", hub_id, exc) from exc
    _check_index_family(dict(index), dict(unet_config or {}), family, f"'{hub_id}'")
    kwargs = _extras(family)
    if vae is not None:
        kwargs["vae"] = vae
    try:
        cls = _pipeline_class(family, dict(unet_config or {}))
        return cls.from_pretrained(hub_id, **dtype_kwargs(dtype), variant=variant or None, **kwargs)
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
        try:
            return AutoencoderKL.from_pretrained(source.hub_id, **dtype_kwargs(dtype))
        except Exception as exc:
            raise _hub_error(field, source.hub_id, exc) from exc
    assert source.path is not None
    path = source.path
    if source.kind == "folder":
        if (path / "config.json").is_file():
            subfolder = None
        elif (path / "vae" / "config.json").is_file():
            subfolder = "vae"
        else:
            raise ModelLoadError(f"{field}: '{path}' has neither config.json (a diffusers VAE folder) nor vae/config.json")
        config_file = path / (subfolder or "") / "config.json"
        declared = read_json(config_file, field).get("_class_name")
        if declared not in (None, "AutoencoderKL"):
            raise ModelLoadError(f"{field}: '{config_file}' describes a {declared}, not a VAE (AutoencoderKL)")
        try:
            return AutoencoderKL.from_pretrained(str(path), subfolder=subfolder, local_files_only=True, **dtype_kwargs(dtype))
        except Exception as exc:
            raise ModelLoadError(f"{field}: cannot load the VAE folder '{path}': {_first_line(exc)}") from exc
    header = read_header(path, field)
    kind = detect(header).kind
    if kind not in ("vae", "checkpoint"):
        what = {"lora": "a LoRA", "embedding": "a textual-inversion embedding",
                "diffusers-unet": "a diffusers UNet weights file"}.get(kind, "a file without VAE weights")
        raise ModelLoadError(f"{field}: '{path}' is not a VAE: it looks like {what}")
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
    """model.prediction other than auto overrides the scheduler config (e.g. epsilon for SD 2.x 512-base)."""
    if prediction in ("", "auto"):
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


def load_pipeline(
    model_cfg: ModelSettings, family: str, *, config_dir: Path, dtype: torch.dtype = torch.float32
) -> DiffusionPipeline:
    """The diffusers pipeline for model.base, with model.vae / variant / prediction / config applied.

    `config_dir` is the folder of the config file: relative paths start there. Every
    failure a user can cause raises ModelLoadError naming the key and the file.
    """
    quiet_progress_bars()
    if family not in PIPELINE_CLASS:
        raise ModelLoadError(f"model.family: tuitrain cannot load {family!r} models yet")
    if not (model_cfg.base or "").strip():
        raise ModelLoadError("model.base: not set; give a hub id, a diffusers folder or a .safetensors file")
    source = resolve_source(model_cfg.base, config_dir, "model.base")
    vae = load_vae(model_cfg, family, config_dir, dtype) if (model_cfg.vae or "").strip() else None
    variant = (model_cfg.variant or "").strip()
    if source.kind == "folder":
        assert source.path is not None
        pipe = _from_folder(source.path, family, variant, vae, dtype)
    elif source.kind == "file":
        assert source.path is not None
        folder, shipped = _config_folder(model_cfg, family, config_dir)
        pipe = load_checkpoint(source.path, family, config_dir=folder, shipped=shipped, vae=vae, dtype=dtype)
    else:
        pipe = _from_hub(source.hub_id, family, variant, vae, dtype)
    _set_prediction(pipe, model_cfg.prediction)
    return pipe
