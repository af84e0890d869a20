"""A prior's companion files, found from the config alone (torch-free): the EfficientNet encoder it trains on, the
decoder (stages B and A) its samples and class images go through, Stable Cascade's previewer.

Shared by cascade and wuerstchen, and by both sides of a run: `tuitrain check` lists `companion_problems` (through
FamilyFiles.readiness) and the adapters' configure raises the first of the same lines, so check refuses what
train refuses, in the same words.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EFFNET_PLACES = (Path("effnet") / "effnet_encoder.safetensors", Path("effnet_encoder.safetensors"))
PREVIEWER_PLACES = (Path("previewer") / "previewer.safetensors", Path("previewer.safetensors"))


@dataclass(frozen=True)
class PriorFamily:
    """How a prior family names its companion files in its config section and in messages."""

    section: str  # the config section holding effnet / decoder (/ previewer): "cascade", "wuerstchen"
    words: str  # the family in messages: "Stable Cascade"
    encoder: str  # why the encoder is needed and which to give, after "<section>.effnet: <where>; "
    decoder_class: str  # the diffusers pipeline a decoder folder holds
    previewer: bool = False  # whether <section>.previewer exists (Stable Cascade's)


CASCADE = PriorFamily("cascade", "Stable Cascade", "stage C trains on EfficientNet latents: set it to Stable "
                      "Cascade's effnet_encoder.safetensors", "StableCascadeDecoderPipeline", previewer=True)
WUERSTCHEN = PriorFamily("wuerstchen", "Würstchen", "the prior trains on EfficientNet latents: set it to Würstchen "
                         "v2's encoder (model_v2_stage_b.pt's effnet_state_dict as .safetensors)",
                         "WuerstchenDecoderPipeline")


@dataclass
class Companions:
    """What the config names or the model folders hold; `problems`: why training cannot start, one line each."""

    effnet: Path | None = None
    decoder: str = ""  # a local folder (resolved) or a hub id; "" none
    previewer: Path | None = None
    problems: list[str] = field(default_factory=list)


def find_effnet(setting: str, roots: list[Path], places: tuple[Path, ...] = EFFNET_PLACES) -> Path | None:
    """The setting (absolute, or from the first root) or the file in one of its usual places under a root
    (`places`: the previewer's for cascade.previewer)."""
    if setting.strip():
        path = Path(setting).expanduser()
        if not path.is_absolute() and roots:
            path = roots[0] / path
        return path
    for root in roots:
        for place in places:
            if (root / place).is_file():
                return root / place
    return None


def model_roots(config: Any, config_dir: Path | None = None) -> list[Path]:
    """Where a prior's companion files are looked for: the model.base folder (a file's own folder), then
    model.config; relative ones from `config_dir` when given (check; a run's config holds absolute paths)."""

    def local(value: str) -> Path | None:
        if not value:
            return None
        path = Path(value).expanduser()
        return config_dir / path if config_dir is not None and not path.is_absolute() else path

    base, folder = local(config.model.base), local(config.model.config)
    return [p for p in (base if base and base.is_dir() else (base.parent if base else None), folder) if p]


def decoder_problem(value: str, roots: list[Path], key: str, words: str, pipeline_class: str) -> tuple[str, str]:
    """(the decoder as a folder path or a hub id, why it cannot be one: "" when it can). A relative path starts at
    the model.base folder; owner/name that is no folder here is a hub id; a folder needs model_index.json."""
    value = value.strip()
    if not value:
        return "", ""
    path = Path(value).expanduser()
    candidates = [path] if path.is_absolute() else [*(root / path for root in roots[:1]), path]
    found = next((c for c in candidates if c.exists()), None)
    if found is None:
        if path.is_absolute() or value.startswith(".") or value.count("/") != 1:
            return "", (f"{key}: '{value}' does not exist; give a {words} decoder diffusers folder (stages B and A) "
                        "or a hub id")
        return value, ""  # a hub id; loaded when the first sample is drawn
    if not (found / "model_index.json").is_file():
        return "", f"{key}: '{found}' is not a diffusers folder (no model_index.json); give a {pipeline_class} folder"
    return str(found), ""


def find_companions(config: Any, family: PriorFamily, config_dir: Path | None = None) -> Companions:
    """The encoder, decoder and previewer `config` gives `family`, and every reason among them not to train."""
    section = getattr(config, family.section)
    roots = model_roots(config, config_dir)
    found = Companions()
    effnet = find_effnet(section.effnet, roots)
    if effnet is None or not effnet.is_file():
        where = (f"'{effnet}' does not exist" if effnet else
                 "not set, and no effnet/effnet_encoder.safetensors beside model.base or in model.config")
        found.problems.append(f"{family.section}.effnet: {where}; {family.encoder}")
    else:
        found.effnet = effnet
    found.decoder, problem = decoder_problem(section.decoder, roots, f"{family.section}.decoder", family.words,
                                             family.decoder_class)
    found.problems += [problem] if problem else []
    if family.previewer:
        previewer = find_effnet(section.previewer, roots, PREVIEWER_PLACES)
        if previewer is not None and not previewer.is_file():
            found.problems.append(f"{family.section}.previewer: '{previewer}' does not exist; give {family.words}'s "
                                  "previewer.safetensors or leave it empty")
        else:
            found.previewer = previewer
    if not section.decoder.strip() and any(c.class_images for c in config.data.concepts if c.enabled):
        # Without stages B and A a drawn "image" is the latent preview: it would train the model on nonsense.
        found.problems.append(f"data.concepts[].class_images: {family.words} draws class images through its decoder; "
                              f"set {family.section}.decoder (stages B and A) or set class_images to 0")
    return found


def companion_problems(config: Any, family: PriorFamily, config_dir: Path) -> list[str]:
    """Why `config` cannot train `family` for want of a companion file (`tuitrain check`'s lines)."""
    return find_companions(config, family, config_dir).problems


def companions_to_train(config: Any, family: PriorFamily) -> Companions:
    """The companions of a run's config (absolute paths), its first problem raised as the run's one line."""
    from tuitrain.trainer.errors import TrainingError

    found = find_companions(config, family)
    if found.problems:
        raise TrainingError(found.problems[0])
    return found
