"""Resumable backups: everything needed to continue a run as if it never stopped.

A backup is a folder checkpoints/step-NNNNNNNN/ with the adapter weights
(safetensors), the training state (optimizer, LR schedule, RNG, position; loaded
with torch.load(weights_only=True), so no code runs on load) and a manifest of
SHA-256 hashes written last. The folder is built under a temporary name and
renamed into place, so a crash leaves either a whole backup or none; a backup
whose manifest is missing or does not match its files is skipped with a message.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from tuitrain.dataset.hashing import file_sha256 as _sha256
from tuitrain.trainer.export.atomic import fsync_dir, fsync_path

MANIFEST = "manifest.json"
WEIGHTS = "adapter.safetensors"
STATE = "state.pt"


def write_backup(folder: Path, step: int, weights: dict[str, torch.Tensor], state: dict[str, Any], keep_last: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    # Make room first: a fine-tune's backup is tens of GB, and keep_last + 1 of them on disk at once
    # can fill it. At least one whole backup always stays until the new one is in place.
    _prune(folder, max(1, keep_last - 1), keep=f"step-{step:08d}")
    final = folder / f"step-{step:08d}"
    tmp = folder / f".tmp-step-{step:08d}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file({k: v.detach().contiguous().cpu() for k, v in weights.items()}, tmp / WEIGHTS)
    torch.save(state, tmp / STATE)
    manifest = {"step": step, "files": {name: _sha256(tmp / name) for name in (WEIGHTS, STATE)}}
    (tmp / MANIFEST).write_text(json.dumps(manifest))
    for name in (WEIGHTS, STATE, MANIFEST):
        fsync_path(tmp / name)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    fsync_dir(folder)
    _prune(folder, keep_last)
    return final


def _prune(folder: Path, keep_last: int, keep: str = "") -> None:
    """Remove all but the newest `keep_last` backups (never the one named `keep`, which is being rewritten)."""
    backups = sorted(p for p in folder.glob("step-*") if p.is_dir() and p.name != keep)
    for old in backups[: max(0, len(backups) - keep_last)]:
        shutil.rmtree(old, ignore_errors=True)


def backup_size(path: Path) -> int:
    """Bytes on disk of one backup folder."""
    return sum(f.stat().st_size for f in path.iterdir() if f.is_file())


@dataclass
class Backup:
    path: Path
    step: int
    weights: dict[str, torch.Tensor]
    state: dict[str, Any]


def _check(path: Path) -> str | None:
    """Why this backup cannot be used, or None when it is whole."""
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError):
        return "no manifest (the backup was interrupted)"
    for name, digest in manifest.get("files", {}).items():
        file = path / name
        if not file.is_file():
            return f"{name} is missing"
        if _sha256(file) != digest:
            return f"{name} is damaged (checksum mismatch)"
    return None


def latest_backup(folder: Path, warn: Any = print) -> Backup | None:
    """The newest whole backup; damaged ones are reported through `warn` and skipped."""
    for path in sorted((p for p in folder.glob("step-*") if p.is_dir()), reverse=True):
        problem = _check(path)
        if problem:
            warn(f"skipping backup {path.name}: {problem}")
            continue
        try:
            state = torch.load(path / STATE, map_location="cpu", weights_only=True)
            weights = load_file(path / WEIGHTS)
        except Exception as exc:  # hashes matched but the content is not ours
            warn(f"skipping backup {path.name}: cannot be read ({exc})")
            continue
        return Backup(path, int(state["step"]), weights, state)
    return None
