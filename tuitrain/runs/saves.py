"""The files a save occupies in a run's output/ folder, and how saves are named without overwriting one another.

Torch-free, so the trainer (trainer/loop.py), `tuitrain pick` and the dashboard name saves by one rule.
"""

from __future__ import annotations

import os
from pathlib import Path


def save_entries(folder: Path, stem: str) -> list[Path]:
    """What one save named `stem` occupies: `stem.safetensors` (any extension) and `stem-diffusers/`."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name == f"{stem}-diffusers" or p.name.startswith(f"{stem}."))


def free_stem(folder: Path, stem: str) -> str:
    """`stem`, or `stem-2`, `-3`, ... when a save of that name is already on disk: no save overwrites another."""
    candidate, n = stem, 2
    while save_entries(folder, candidate):
        candidate, n = f"{stem}-{n}", n + 1
    return candidate


def retire_final(folder: Path, name: str, step: int) -> list[tuple[Path, Path]]:
    """Rename a finished attempt's final save to the step it holds, so a continued run's final takes the name.

    `name.safetensors` of a run that finished at step 20 becomes `name-step000020-final.safetensors`
    (its -diffusers folder likewise): renamed, never copied or deleted, and, being a final,
    never pruned by saving.keep_last.
    """
    entries = save_entries(folder, name)
    if not entries:
        return []
    stem = free_stem(folder, f"{name}-step{step:06d}-final")
    picked = _picked_step(folder / f"{name}.pick.json", f"{name}.safetensors")
    if picked is not None:  # `name` holds a pick (runs/pick.py), a copy of step `picked`: named for what it is
        stem = free_stem(folder, f"{name}-step{picked:06d}-picked")
    moved = []
    for path in entries:
        target = folder / (stem + path.name[len(name):])
        os.rename(path, target)
        moved.append((path, target))
    return moved


def _picked_step(note: Path, own_file: str) -> int | None:
    """The step of the copy a pick note (runs/pick.py) says `name` holds; None without a readable note, or
    when the pick was the final itself (its source is `own_file`: nothing was copied, `name` is the final)."""
    import json

    try:
        data = json.loads(note.read_text())
        step, source = data.get("step"), data.get("source")
    except (OSError, ValueError, AttributeError):
        return None
    return step if isinstance(step, int) and source != own_file else None
