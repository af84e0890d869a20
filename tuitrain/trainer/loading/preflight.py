"""What a base model is, decided from headers and config files alone: no torch, no weights read.

The same rules the loader applies before diffusers reads a weight (pipeline.py and
checkpoint.py call them), so `tuitrain check` and `tuitrain train` reach one verdict on
model.base and model.vae in well under a second: a missing file, a pickle, a LoRA or
VAE given as the base, a checkpoint of another family, a folder that is not a diffusers
model, a hub id that cannot be reached. What only loading can tell (a converter failing
on an odd file, shapes against the architecture config) stays with the loader.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tuitrain.families import FAMILIES, with_article
from tuitrain.trainer.families import family_files
from tuitrain.trainer.loading.config_folders import read_json
from tuitrain.trainer.loading.errors import ModelLoadError
from tuitrain.trainer.loading.header import (
    UNET_PREFIX,
    VAE_PREFIX,
    Detected,
    SafetensorsHeader,
    context_dim_family,
    describe_keys,
    detect,
    read_header,
)

PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".pkl")
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")
_FILE_SUFFIXES = (".safetensors", ".sft", *PICKLE_SUFFIXES)
CONV_IN = f"{UNET_PREFIX}input_blocks.0.0.weight"


class ModelSettings(Protocol):
    """The model section of the config (tuitrain.config.schema.ModelSection) as seen here."""

    base: str
    vae: str
    variant: str
    prediction: str
    config: str


def _quoted(value: str, limit: int = 80) -> str:
    """A user's value, quoted (control characters escaped) and cut to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc).split("\n")[0] or type(exc).__name__


@dataclass(frozen=True)
class Source:
    kind: str  # folder | file | hub
    path: Path | None = None
    hub_id: str = ""


def resolve_source(value: str, config_dir: Path, field: str) -> Source:
    """Where a model value points: an existing folder or file (relative to the config), or a hub id."""
    raw = value.strip()
    if any(ord(c) < 32 or ord(c) == 127 for c in raw):
        raise ModelLoadError(f"{field}: {_quoted(raw)} is not a usable path (it holds a control character)")
    if any(len(part.encode()) > 255 for part in re.split(r"[/\\]", raw)):
        raise ModelLoadError(f"{field}: {_quoted(raw)} is not a usable path (a name in it is over 255 bytes)")
    try:
        path = Path(raw).expanduser()
        if not path.is_absolute():
            path = config_dir / path
        is_dir, is_file = path.is_dir(), path.is_file()
    except (RuntimeError, ValueError, OSError) as exc:  # ~nosuchuser, a NUL, a name over 255 bytes
        raise ModelLoadError(f"{field}: {_quoted(raw)} is not a usable path ({_reason(exc)})") from None
    if is_dir:
        return Source("folder", path)
    if is_file:
        if path.suffix.lower() in PICKLE_SUFFIXES:
            raise pickle_refused(path, field)
        return Source("file", path)
    looks_like_path = raw.startswith((".", "/", "~", "\\")) or raw.lower().endswith(_FILE_SUFFIXES)
    if _HUB_ID.fullmatch(raw) and not looks_like_path:
        return Source("hub", hub_id=raw)
    where = "" if path == Path(raw) else f" (relative paths start at the config file's folder, {config_dir})"
    raise ModelLoadError(f"{field}: file or folder not found: '{path}'{where}")


def text_encoder_files(model_cfg: ModelSettings, config_dir: Path) -> dict[str, Path]:
    """model.text_encoder / text_encoder_2 (FLUX.1's CLIP-L and T5 files), resolved: component -> file."""
    found: dict[str, Path] = {}
    for name in ("text_encoder", "text_encoder_2"):
        value = (getattr(model_cfg, name, "") or "").strip()
        if not value:
            continue
        field = f"model.{name}"
        source = resolve_source(value, config_dir, field)
        if source.kind != "file" or source.path is None:
            raise ModelLoadError(f"{field}: '{value}' is not a file; give the text encoder's .safetensors file")
        found[name] = source.path
    return found


def part_files(model_cfg: ModelSettings, family: str, source: Source, config_dir: Path) -> tuple[dict[str, Path], str]:
    """model.text_encoder / text_encoder_2 beside any model.base, resolved and checked from their headers (each must
    hold its part), as `tuitrain check` and the loader both see them: (component -> file, where they come from in
    words). One line naming the key for a file not found, a hub base, or a file that is not its part."""
    given = text_encoder_files(model_cfg, config_dir)
    if given and source.kind == "hub":
        raise ModelLoadError(f"model.{next(iter(given))}: a text encoder file goes with a local model.base "
                             "(a transformer file, an all-in-one checkpoint or a diffusers folder), not a hub id")
    return given, family_files(family).part_files(given) if given else ""


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


def families_of_index(index: dict[str, Any], unet_config: dict[str, Any] | None) -> tuple[str, ...]:
    """The families a model_index.json can be. Families that share a pipeline class (SD 1.x and 2.x)
    are told apart by the UNet's cross-attention width; an unusual width (a tiny test model) leaves all."""
    declared = index.get("_class_name")
    found = tuple(name for name in FAMILIES if declared in family_files(name).pipeline_classes)
    if len(found) > 1:
        by_width = context_dim_family((unet_config or {}).get("cross_attention_dim"))
        if by_width in found:
            return (by_width,)
    return found


def check_index_family(index: dict[str, Any], unet_config: dict[str, Any] | None, family: str, where: str) -> None:
    found = families_of_index(index, unet_config)
    if not found:
        raise ModelLoadError(
            f"model.base: {where} is a {index.get('_class_name')} model; model.family = '{family}' needs a "
            f"{family_files(family).pipeline_class}"
        )
    if family not in found:
        words = " or ".join(FAMILIES[f].words for f in found)
        names = " or ".join(f"'{f}'" for f in found)
        raise ModelLoadError(
            f"model.base: {where} looks like {with_article(words)} model, but model.family = '{family}'; "
            f"set model.family = {names}"
        )


def wrong_kind(field: str, path: Path, found: Detected, header: SafetensorsHeader) -> ModelLoadError:
    what = {
        "lora": "a LoRA, not a base model; set model.base to the checkpoint it was trained on",
        "vae": "a VAE, not a full checkpoint; put it in model.vae and set model.base to the model",
        "embedding": "a textual-inversion embedding, not a base model",
        "diffusers-unet": (
            "a diffusers UNet weights file, not a single-file checkpoint; set model.base to the diffusers "
            "folder that holds model_index.json"
        ),
    }.get(found.kind)
    if found.kind == "denoiser" and found.family is not None:
        what = (f"{with_article(FAMILIES[found.family].words)} transformer file alone, not a checkpoint of this "
                f"family; set model.family = '{found.family}'")
    if what is None:
        what = (
            f"not a Stable Diffusion checkpoint: it has no UNet weights ('{UNET_PREFIX}*'); "
            f"its first keys are {describe_keys(header)}"
        )
    return ModelLoadError(f"{field}: '{path}' is {what}")


def check_checkpoint(header: SafetensorsHeader, family: str, *, has_vae: bool, field: str = "model.base") -> None:
    """Refuse a file that is not a complete text-to-image checkpoint of `family`."""
    path = header.path
    found = detect(header)
    if found.kind != "checkpoint":
        raise wrong_kind(field, path, found, header)
    if found.note:
        raise ModelLoadError(f"{field}: '{path}' looks like {found.note}")
    if found.family is not None and found.family != family:
        raise ModelLoadError(
            f"{field}: '{path}' looks like {with_article(FAMILIES[found.family].words)} checkpoint, but model.family = "
            f"'{family}'; set model.family = '{found.family}'"
        )
    channels = unet_in_channels(header)
    files = family_files(family)
    if channels is not None and channels not in files.trainable_channels:
        raise ModelLoadError(
            f"{field}: '{path}' is an image-conditioned model ({channels} UNet input channels); tuitrain trains "
            f"{files.describe_channels()}"
        )
    if not has_vae and not header.has_prefix(VAE_PREFIX):
        raise ModelLoadError(
            f"{field}: '{path}' has no VAE weights ('{VAE_PREFIX}*'); set model.vae to a VAE "
            "(.safetensors file, diffusers folder or hub id)"
        )
    for prefix in family_files(family).text_encoder_prefixes:
        if not header.has_prefix(prefix):
            raise ModelLoadError(
                f"{field}: '{path}' has no text encoder weights ('{prefix}*'); tuitrain needs a full checkpoint "
                "(UNet, VAE and text encoders)"
            )


def unet_in_channels(header: SafetensorsHeader) -> int | None:
    """Input channels of the UNet's first convolution (FamilyFiles.trainable_channels tells them apart), from the header."""
    conv_in = header.shapes.get(CONV_IN)
    return int(conv_in[1]) if conv_in is not None and len(conv_in) == 4 else None


def check_folder(folder: Path, family: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """A diffusers model folder of `family`: (its model_index.json, its unet/config.json or None)."""
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
    unet_file = folder / family_files(family).denoiser_component / "config.json"
    unet_config = read_json(unet_file, "model.base") if unet_file.is_file() else None
    check_index_family(index, unet_config, family, f"'{folder}'")
    return index, unet_config


@dataclass(frozen=True)
class HubCheck:
    """What one quick look at the hub said about a model id."""

    cached: bool  # model_index.json is in the local hub cache
    reachable: bool  # the hub answered

    @property
    def local_only(self) -> bool:
        """Load from the cache without asking the hub (which would retry five times, for half a minute)."""
        return self.cached and not self.reachable


def check_hub(hub_id: str, field: str, filename: str = "model_index.json", timeout: float = 10.0) -> HubCheck:
    """One request to the hub, no retries: it has the model, or the user hears why not at once."""
    from huggingface_hub import HfApi, try_to_load_from_cache
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    from huggingface_hub import constants

    cached = isinstance(try_to_load_from_cache(hub_id, filename), str)
    if constants.HF_HUB_OFFLINE:
        if cached:
            return HubCheck(cached=True, reachable=False)
        raise ModelLoadError(
            f"{field}: '{hub_id}' is not a local file or folder, the hub is off (HF_HUB_OFFLINE=1) and it is not "
            "in the local hub cache; download it first or give a local path"
        )
    try:
        HfApi().model_info(hub_id, timeout=timeout)
    except (RepositoryNotFoundError, GatedRepoError):
        raise ModelLoadError(
            f"{field}: '{hub_id}' is not a local file or folder, and the hub has no model of that name that this "
            "machine may read (a typo, or a private / gated model: accept its licence and log in with `hf auth login`)"
        ) from None
    except Exception as exc:  # noqa: BLE001 - no network, DNS, proxy, timeout: all mean "unreachable"
        if cached:
            return HubCheck(cached=True, reachable=False)
        raise ModelLoadError(
            f"{field}: '{hub_id}' is not a local file or folder and the hub is unreachable "
            f"({_reason(exc)}); download it first or give a local path"
        ) from None
    return HubCheck(cached=cached, reachable=True)


def _size(path: Path) -> str:
    size = path.stat().st_size
    return f"{size / 2**30:.1f} GB" if size >= 2**30 else f"{size / 2**20:.1f} MB"


QUANTO_MODES = ("fp8", "int4")  # model.quantize modes optimum-quanto stores (trainer/quantize.py)


def missing_quanto(key: str, mode: str) -> str:
    """The one line for a quanto mode on a machine without optimum-quanto (also trainer/quantize.py's)."""
    return (f"{key}: '{mode}' needs optimum-quanto, which is not installed: pip install -c constraints.txt "
            f"'tuitrain[quantize]' (optimum-quanto); or choose {key} = 'int8' / 'nf4' (bitsandbytes)")


def check_quantize_libraries(model_cfg: ModelSettings) -> None:
    """ModelLoadError when model.quantize(_text_encoders) names a mode whose library is missing (found without
    importing it: no torch here)."""
    import importlib.util

    for key in ("quantize", "quantize_text_encoders"):
        mode = getattr(model_cfg, key, "none")
        if mode in QUANTO_MODES:
            try:
                found = importlib.util.find_spec("optimum.quanto") is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                raise ModelLoadError(missing_quanto(f"model.{key}", mode))


def inspect_base(model_cfg: ModelSettings, family: str, config_dir: Path) -> str:
    """What model.base (and model.vae) are, in a few words; ModelLoadError naming the key when unusable.

    Reads headers and JSON only: what `tuitrain check` and `tuitrain train` say before any weight loads.
    """
    if family not in FAMILIES:
        raise ModelLoadError(f"model.family: tuitrain cannot load {family!r} models yet")
    check_quantize_libraries(model_cfg)
    if not (model_cfg.base or "").strip():
        raise ModelLoadError("model.base: not set; give a hub id, a diffusers folder or a .safetensors file")
    has_vae = bool((model_cfg.vae or "").strip())
    if has_vae:
        inspect_vae(model_cfg.vae, config_dir)
    source = resolve_source(model_cfg.base, config_dir, "model.base")
    words = FAMILIES[family].words
    given, given_words = part_files(model_cfg, family, source, config_dir)
    if source.kind == "folder":
        assert source.path is not None
        index, unet_config = check_folder(source.path, family)
        variant = family_files(family).variant((unet_config or {}).get("in_channels"))
        return (f"{words}{f' {variant.name}' if variant else ''} diffusers folder ({index.get('_class_name')})"
                + (f", {given_words}" if given_words else ""))
    if source.kind == "file":
        assert source.path is not None
        refuse_single_file(family, source.path)
        header = read_header(source.path, "model.base")
        if not family_files(family).single_file:
            config = getattr(model_cfg, "config", "") or ""
            check_denoiser_file(header, family, config, config_dir)
            parts = family_files(family).denoiser_file_parts(source.path, given,
                                                             has_vae=has_vae, folder_has_weights=bool(config.strip()))
            return f"{words} transformer file ({_size(source.path)}), {parts}"
        check_checkpoint(header, family, has_vae=has_vae)
        variant = family_files(family).variant(unet_in_channels(header))
        return f"{words}{f' {variant.name}' if variant else ''} checkpoint ({_size(source.path)})"
    hub = check_hub(source.hub_id, "model.base")
    state = "cached, the hub is unreachable" if hub.local_only else ("cached" if hub.cached else "downloads on first use")
    return f"hub model {source.hub_id} ({state}; its family is checked when it loads)"


def refuse_single_file(family: str, path: Path) -> None:
    """A family tuitrain cannot load from one file says so, naming the file, before anything reads it."""
    files = family_files(family)
    if not files.single_file and not files.denoiser_file:
        raise ModelLoadError(
            f"model.base: '{path}' is a single file; tuitrain loads {FAMILIES[family].words} models from a diffusers "
            "folder (model_index.json, transformer/, vae/, text_encoder*/, tokenizer*/) or a hub id for now"
        )


def check_denoiser_file(header: SafetensorsHeader, family: str, config: str, config_dir: Path) -> Path:
    """A family's denoiser alone as model.base (FLUX.1's BFL file): the file must be one, and model.config must
    name the diffusers folder the other components come from, unless the family ships a complete config folder
    (FLUX.1: its other parts then come from their own files). Returns that folder."""
    from tuitrain.trainer.loading.config_folders import check_config_dir, shipped_config_dir

    found = detect(header)
    words = FAMILIES[family].words
    if found.kind != "denoiser" or found.family != family:
        if found.kind in ("denoiser", "checkpoint") and found.family not in (None, family):
            raise ModelLoadError(
                f"model.base: '{header.path}' looks like {with_article(FAMILIES[found.family].words)} model, but "
                f"model.family = '{family}'; set model.family = '{found.family}'"
            )
        raise ModelLoadError(
            f"model.base: '{header.path}' is not {with_article(words)} transformer file (its first keys are "
            f"{describe_keys(header)}); give the transformer file or a diffusers folder"
        )
    if not (config or "").strip() and (family_files(family).configs / "model_index.json").is_file():
        return shipped_config_dir(family)
    if not (config or "").strip():
        raise ModelLoadError(
            f"model.config: not set; a {words} transformer file as model.base takes its text encoders, VAE and "
            f"tokenizers from a {words} diffusers folder: set model.config to one"
        )
    folder = Path(config).expanduser()
    if not folder.is_absolute():
        folder = config_dir / folder
    check_config_dir(folder, family)
    return folder


def vae_subfolder(folder: Path, field: str = "model.vae") -> str | None:
    """Where a VAE folder keeps its config: None (the folder itself) or "vae" (a model folder)."""
    subfolder = next((sub for sub in (None, "vae") if (folder / (sub or "") / "config.json").is_file()), "missing")
    if subfolder == "missing":
        raise ModelLoadError(f"{field}: '{folder}' has neither config.json (a diffusers VAE folder) nor vae/config.json")
    config_file = folder / (subfolder or "") / "config.json"
    declared = read_json(config_file, field).get("_class_name")
    if declared not in (None, "AutoencoderKL"):
        raise ModelLoadError(f"{field}: '{config_file}' describes a {declared}, not a VAE (AutoencoderKL)")
    return subfolder


def vae_file_header(path: Path, field: str = "model.vae") -> SafetensorsHeader:
    """The header of a file given as the VAE, refused unless it holds VAE weights."""
    header = read_header(path, field)
    kind = detect(header).kind
    if kind not in ("vae", "checkpoint"):
        what = {"lora": "a LoRA", "embedding": "a textual-inversion embedding",
                "diffusers-unet": "a diffusers UNet weights file"}.get(kind, "a file without VAE weights")
        raise ModelLoadError(f"{field}: '{path}' is not a VAE: it looks like {what}")
    return header


def inspect_vae(value: str, config_dir: Path) -> str:
    """model.vae: a VAE folder, a file holding VAE weights, or a reachable hub id."""
    field = "model.vae"
    source = resolve_source(value, config_dir, field)
    if source.kind == "hub":
        check_hub(source.hub_id, field, filename="config.json")
        return "hub VAE"
    assert source.path is not None
    if source.kind == "folder":
        vae_subfolder(source.path, field)
        return "VAE folder"
    vae_file_header(source.path, field)
    return "VAE file"
