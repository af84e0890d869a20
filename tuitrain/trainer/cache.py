"""Latents and text embeddings cached on disk, under keys that cover what they depend on.

A cached tensor is only ever found under the key of the exact inputs that made it:
model identity, image file (path, size, mtime), bucket, crop, flip and dtype for
latents; model identity, caption and clip skip for text. Change any of them and
the key changes, so a stale entry is never read — it is simply not found.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

CACHE_FORMAT = 1


def model_identity(base: str, vae: str, variant: str, family: str, config_dir: Path, config: str = "") -> str:
    """Identifies the weights that encode: hub id or local path, plus size/mtime of local files.

    `config` (model.config) counts where it is set: for a denoiser-alone file (FLUX.1's) the text
    encoders and the VAE come from that folder. Unset, the key is what it was before it counted.
    """
    parts: list[Any] = [CACHE_FORMAT, family, variant]
    for value in (base, vae, *((config,) if config else ())):
        if not value:
            parts.append("")
            continue
        path = Path(value).expanduser()
        path = path if path.is_absolute() else config_dir / path
        # A local path is identified by where it really is; a hub id by its name.
        parts.append(str(path.resolve()) if path.exists() else value)
        if path.is_file():
            st = path.stat()
            parts.append((st.st_size, st.st_mtime_ns))
        elif path.is_dir():
            for weights in sorted(path.rglob("*.safetensors")):
                st = weights.stat()
                parts.append((str(weights.relative_to(path)), st.st_size, st.st_mtime_ns))
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


def _key(fields: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


class TensorCache:
    """A folder of small safetensors files, one per key, written atomically.

    Entries read or written are also kept in memory up to `memory_budget` bytes, so
    epochs after the first do not touch the disk (a training step re-reading its
    latents from disk cost ~5% of a small model's step time).
    """

    def __init__(self, folder: Path, kind: str, memory_budget: int = 2 << 30) -> None:
        self.folder = folder / kind
        self.folder.mkdir(parents=True, exist_ok=True)
        self.hits = 0
        self.misses = 0
        self.memory_budget = memory_budget
        self._memory: dict[str, dict[str, torch.Tensor]] = {}
        self._memory_bytes = 0

    def _remember(self, key: str, tensors: dict[str, torch.Tensor]) -> None:
        size = sum(t.numel() * t.element_size() for t in tensors.values())
        if self._memory_bytes + size <= self.memory_budget:
            self._memory[key] = tensors
            self._memory_bytes += size

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.safetensors"

    def get(self, fields: dict[str, Any]) -> dict[str, torch.Tensor] | None:
        key = _key(fields)
        if key in self._memory:
            self.hits += 1
            return self._memory[key]
        path = self._path(key)
        if not path.exists():
            self.misses += 1
            return None
        try:
            tensors = load_file(path)
        except Exception:  # a damaged entry is re-made, never trusted
            path.unlink(missing_ok=True)
            self.misses += 1
            return None
        self.hits += 1
        self._remember(key, tensors)
        return tensors

    def put(self, fields: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        key = _key(fields)
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        stored = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
        save_file(stored, tmp)
        os.replace(tmp, path)
        self._remember(key, stored)


def latent_fields(
    model_id: str, path: Path, file_size: int, mtime_ns: int, bucket: tuple[int, int],
    crop: tuple[int, int, int, int], flip: bool, dtype: torch.dtype,
) -> dict[str, Any]:
    return {
        "model": model_id, "path": str(path), "size": file_size, "mtime_ns": mtime_ns,
        "bucket": list(bucket), "crop": list(crop), "flip": flip, "dtype": str(dtype),
    }


def text_fields(model_id: str, caption: str, clip_skip: int, dtype: torch.dtype, settings: str = "") -> dict[str, Any]:
    """A caption's text-encoder outputs; `settings` is what else the family's encoding depends on
    (FamilyAdapter.text_settings: FLUX.1's T5 length), left out of the key when there is none."""
    fields = {"model": model_id, "caption": caption, "clip_skip": clip_skip, "dtype": str(dtype)}
    return {**fields, "settings": settings} if settings else fields


def mask_fields(latent_key: dict[str, Any], what: str, mask_path: Path, mask_size: int, mask_mtime_ns: int) -> dict[str, Any]:
    """A tensor made from a sample and its mask file (same crop and flip): the mask file is part of its key."""
    return {**latent_key, "what": what, "mask": str(mask_path), "mask_size": mask_size, "mask_mtime_ns": mask_mtime_ns}


def blank_fields(model_id: str, bucket: tuple[int, int], dtype: torch.dtype) -> dict[str, Any]:
    """The latents of an all-zero (fully masked) image of a bucket's size: one entry serves every image."""
    return {"model": model_id, "what": "blank", "bucket": list(bucket), "dtype": str(dtype)}
