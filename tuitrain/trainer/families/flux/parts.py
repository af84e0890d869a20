"""Where a FLUX.1 transformer file's other parts come from, decided from headers alone (torch-free: `tuitrain
check` says it before anything loads, and the loader follows the same plan).

CLIP-L, T5-XXL and the VAE each come from their own file (model.text_encoder, text_encoder_2, vae: ComfyUI's
clip_l.safetensors, t5xxl_fp16.safetensors, ae.safetensors), else from an all-in-one checkpoint as model.base
(ComfyUI's CheckpointSave layout for Flux: comfy/supported_models.py's Flux keeps the text encoders under
'text_encoders.' -- clip_l.transformer., t5xxl.transformer. -- and the VAE under 'vae.', beside
'model.diffusion_model.'), else from model.config's diffusers folder.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuitrain.trainer.loading.errors import ModelLoadError

# Where ComfyUI's all-in-one Flux checkpoints keep the parts besides the transformer.
CLIP_PREFIX = "text_encoders.clip_l.transformer."
T5_PREFIX = "text_encoders.t5xxl.transformer."
VAE_PREFIX = "vae."
# One weight each part's file must hold (transformers' / LDM names, after the part's prefix).
_CLIP_MARK = "encoder.layers.0.self_attn.q_proj.weight"
_T5_MARK = "encoder.block.0.layer.0.SelfAttention.q.weight"
_VAE_MARK = "encoder.conv_in.weight"


@dataclass(frozen=True)
class Part:
    """One FLUX.1 component, and where it comes from."""

    component: str  # the FluxPipeline attribute: text_encoder, text_encoder_2, vae
    field: str  # the config key that names its file (model.text_encoder, ...)
    words: str  # what it is, for messages
    example: str  # the file ComfyUI users have
    prefix: str  # its prefix in an all-in-one checkpoint
    mark: str


PARTS = (
    Part("text_encoder", "model.text_encoder", "CLIP-L text encoder", "clip_l.safetensors", CLIP_PREFIX, _CLIP_MARK),
    Part("text_encoder_2", "model.text_encoder_2", "T5-XXL encoder", "t5xxl_fp16.safetensors", T5_PREFIX, _T5_MARK),
    Part("vae", "model.vae", "VAE", "ae.safetensors", VAE_PREFIX, _VAE_MARK),
)


@dataclass(frozen=True)
class Source:
    """A part's weights: `path`, the tensors under `prefix` (field: the key a message names)."""

    path: Path
    prefix: str
    field: str


def _holds(header: Any, part: Part, prefix: str) -> bool:
    return prefix + part.mark in header.shapes or prefix + "text_model." + part.mark in header.shapes


def part_file(part: Part, path: Path) -> Source:
    """`path` given for `part` (model.text_encoder / text_encoder_2): a file holding it alone, or an all-in-one
    checkpoint holding it under ComfyUI's prefix; anything else is one line naming the key and the file."""
    from tuitrain.trainer.loading.header import describe_keys, read_header

    header = read_header(path, part.field)
    for prefix in ("", part.prefix):
        if _holds(header, part, prefix):
            return Source(path, prefix, part.field)
    other = next((p for p in PARTS if p is not part and any(_holds(header, p, x) for x in ("", p.prefix))), None)
    hint = f" it looks like the {other.words}, which goes in {other.field}" if other else (
        f" its first keys are {describe_keys(header)}")
    raise ModelLoadError(
        f"{part.field}: '{path}' is not a FLUX.1 {part.words} file:{hint}; give {part.example} "
        f"({'transformers names' if part.component != 'vae' else 'BFL / LDM names'})"
    )


def plan_parts(base: Path, given: Mapping[str, Path], *, has_vae: bool, folder_has_weights: bool) -> dict[str, Source]:
    """Where each of CLIP-L, T5 and the VAE comes from: its own file (`given`, by component), else the all-in-one
    `base`, else model.config's folder (not in the result). Without a folder that holds weights, a part found
    nowhere is one line naming the key to set."""
    from tuitrain.trainer.loading.header import read_header

    header = read_header(base, "model.base")
    sources: dict[str, Source] = {}
    for part in PARTS:
        if part.component == "vae" and has_vae:
            continue  # model.vae, loaded by the pipeline loader
        if part.component in given:
            sources[part.component] = part_file(part, given[part.component])
        elif _holds(header, part, part.prefix):
            sources[part.component] = Source(base, part.prefix, "model.base")
        elif not folder_has_weights:
            raise ModelLoadError(
                f"{part.field}: not set, and the FLUX.1 transformer file '{base}' holds no {part.words}; set "
                f"{part.field} to it ({part.example}), or model.config to a FLUX.1 diffusers folder to take it from"
            )
    return sources


def describe(sources: Mapping[str, Source], *, has_vae: bool, rest: bool = True) -> str:
    """Where the parts come from, in words for `tuitrain check` (CLIP-L from clip_l.safetensors, ...); `rest`:
    name model.config for the parts not in `sources` (a transformer file's), not for a diffusers folder's."""
    names = {"text_encoder": "CLIP-L", "text_encoder_2": "T5", "vae": "VAE"}
    said = [f"{names[c]} from {'the checkpoint' if s.field == 'model.base' else s.path.name}"
            for c, s in sources.items()]
    if has_vae:
        said.append("VAE from model.vae")
    others = [names[c] for c in names if c not in sources and not (c == "vae" and has_vae)]
    if others and rest:
        said.append(f"{', '.join(others)} from model.config")
    return ", ".join(said)
