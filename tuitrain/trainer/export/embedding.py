"""Textual-inversion embedding files in the layout A1111, ComfyUI, kohya and diffusers share.

One safetensors file per embedding: SD 1.x / 2.x hold one tensor `emb_params` of
shape [vectors, dim]; SDXL holds `clip_l` [vectors, 768] (the first text encoder)
and `clip_g` [vectors, 1280] (the second). A1111 tells SDXL embeddings by those two
keys, ComfyUI picks the key of the encoder it fills, and diffusers'
load_textual_inversion takes each tensor with `text_encoder=` / `tokenizer=`.

The header carries what a person (or a UI) wants to know later: the token to write,
the vector count, the family and base model, the step, and the ModelSpec keys with
architecture `<family>/textual-inversion`, as kohya's sai_model_spec writes them.
"""

from __future__ import annotations

import datetime as _dt
import os
import time
from collections.abc import Mapping
from pathlib import Path

import torch

from tuitrain.families import FAMILIES
from tuitrain.trainer.families import family_files
from tuitrain.trainer.export.atomic import atomic_save_safetensors
from tuitrain.trainer.export.metadata import MODELSPEC_VERSION, modelspec_architecture, safetensors_hashes

SAVE_DTYPES: dict[str, torch.dtype] = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
ADAPTER_ARCHITECTURE = "textual-inversion"


def embedding_keys(family: str) -> tuple[str, ...]:
    """The file's tensor names for `family` (FamilyFiles.embedding_keys, in the order of its text encoders);
    ValueError for a family without an embedding format."""
    keys = family_files(family).embedding_keys if family in FAMILIES else ()
    if not keys:
        raise ValueError(f"no textual-inversion file format for model family {family!r}")
    return keys


def base_model_name(base: str) -> str:
    """The base model as kohya's ss_sd_model_name records it: the last path part (no local folders leak)."""
    return Path(base.rstrip("/\\")).name if base else ""


def embedding_metadata(
    *,
    family: str,
    token: str,
    vectors: int,
    output_name: str,
    base_model: str,
    step: int,
    epoch: int,
    training_started_at: float,
    resolution: int,
    v_prediction: bool | None = None,
    initial_text: str = "",
    now: float | None = None,
) -> dict[str, str]:
    """The header of an embedding file (hashes are added by the writer). Every value is a string."""
    now = time.time() if now is None else now
    meta = {
        # What a person needs to use the file: the word to write in a prompt.
        "ti_token": token,
        "ti_vectors": str(vectors),
        "ti_initial_text": initial_text,
        "ti_family": family,
        # kohya's keys, which Civitai and the UIs' metadata views read.
        "ss_base_model_version": FAMILIES[family].ss_base_model_version,
        "ss_sd_model_name": base_model_name(base_model),
        "ss_output_name": output_name,
        "ss_v2": str(FAMILIES[family].ss_v2),
        "ss_steps": str(step),
        "ss_epoch": str(epoch),
        "ss_training_started_at": str(training_started_at),
        "ss_training_finished_at": str(now),
        "ss_resolution": f"({resolution}, {resolution})",
        "modelspec.sai_model_spec": MODELSPEC_VERSION,
        "modelspec.architecture": modelspec_architecture(family, v_prediction=v_prediction,
                                                         adapter=ADAPTER_ARCHITECTURE),
        # An embedding has no module names; what it depends on is the original models' prompt encoding
        # (kohya records textual inversions as Stability AI implementations too).
        "modelspec.implementation": family_files(family).original_implementation,
        "modelspec.title": output_name,
        "modelspec.resolution": f"{resolution}x{resolution}",
        "modelspec.date": _dt.datetime.fromtimestamp(int(now)).isoformat(),
    }
    if v_prediction is not None:
        meta["modelspec.prediction_type"] = "v" if v_prediction else "epsilon"
    return meta


def save_embedding(
    path: str | os.PathLike[str],
    vectors: Mapping[str, torch.Tensor],
    *,
    family: str,
    save_dtype: str,
    metadata: Mapping[str, str],
) -> Path:
    """Write `vectors` (export name -> [n, dim]) to `path` atomically, in saving.dtype, with kohya's hashes.

    The names must be exactly the family's (emb_params, or clip_l + clip_g): a file a
    UI would misread is an error here, not there.
    """
    expected = embedding_keys(family)
    if tuple(vectors) != expected:
        raise ValueError(f"a {family} embedding holds {list(expected)}, got {list(vectors)}")
    counts = {int(value.shape[0]) for value in vectors.values()}
    if len(counts) != 1 or any(value.dim() != 2 for value in vectors.values()):
        raise ValueError(f"embedding tensors must be [vectors, dim] with one vector count, got "
                         f"{ {k: tuple(v.shape) for k, v in vectors.items()} }")
    dtype = SAVE_DTYPES[save_dtype]
    tensors = {key: value.detach().to(device="cpu", dtype=dtype).contiguous() for key, value in vectors.items()}
    header = {**metadata, **safetensors_hashes(tensors, metadata)}
    return atomic_save_safetensors(tensors, path, header)
