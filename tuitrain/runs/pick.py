"""Choosing the best save: a run's saves with their eval loss, and picking one as the run's output.

The saves come from the event log's `saved` events (step, file, eval loss), kept only while their
file is still on disk (saving.keep_last prunes). Picking step N copies that save's files to
`output/<name>.*` (the name a final save has) beside `output/<name>.pick.json`, which says which
step it came from. Nothing is lost on the way: the save's own files stay under their step name, and
what held `<name>` before (the run's final save, or an unknown file) is renamed to its step name
first (`<name>-stepNNNNNN-final`, as trainer/loop.py's continued runs do); only an earlier pick,
itself a copy of a save still on disk, is replaced.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuitrain.runs.events import iter_events
from tuitrain.runs.layout import RunDir
from tuitrain.runs.saves import free_stem, retire_final, save_entries

PICK_SUFFIX = ".pick.json"


class PickError(Exception):
    """Why a save cannot be picked or found: one line for the user."""


@dataclass(frozen=True)
class Save:
    """One save still on disk."""

    step: int
    epoch: int
    path: Path  # the main file (what a user loads)
    final: bool
    eval_loss: float | None

    @property
    def stem(self) -> str:
        return self.path.name.removesuffix(".safetensors")


def output_name(run: RunDir) -> str:
    """saving.name, else the run's name: the stem of the final save and of a pick."""
    try:
        from tuitrain.tomlcompat import tomllib

        with open(run.config, "rb") as fh:
            name = tomllib.load(fh).get("saving", {}).get("name", "")
    except (OSError, ValueError):
        name = ""
    return name if isinstance(name, str) and name else run.name


def list_saves(run: RunDir) -> list[Save]:
    """The run's saves whose file is still on disk, by step (a step saved twice: its latest save). A save
    of the final that a pick or a continued run renamed is found under its new name."""
    by_step: dict[int, Save] = {}
    name = output_name(run)
    for _, event in iter_events(run.events):
        if event.get("type") != "saved" or not isinstance(event.get("step"), int):
            continue
        path = Path(str(event.get("path", "")))
        if not path.is_absolute():
            path = run.root / path
        final = bool(event.get("final"))
        if final:  # renamed since by a pick or a continued run (retire_final): `name` may now hold a pick
            stem = f"{name}-step{event['step']:06d}"
            moved = (sorted(run.output.glob(f"{stem}-final*.safetensors"))
                     or sorted(run.output.glob(f"{stem}-picked*.safetensors")))  # a copy of this very step
            path = moved[-1] if moved else path
        if not path.is_file():
            continue
        loss = event.get("eval_loss")
        by_step[event["step"]] = Save(event["step"], int(event.get("epoch", 0)), path, final,
                                      float(loss) if isinstance(loss, (int, float)) else None)
    return [by_step[s] for s in sorted(by_step)]


def find_save(run: RunDir, which: str) -> Save:
    """`which`: a step number, 'last' or 'best' (the lowest eval loss)."""
    saves = list_saves(run)
    if not saves:
        raise PickError(f"run {run.name!r} has no save on disk in {run.output}")
    if which == "last":
        return saves[-1]
    if which == "best":
        scored = [s for s in saves if s.eval_loss is not None]
        if not scored:
            raise PickError(
                f"run {run.name!r} has no eval loss to pick the best save by (it needs a held-out set: a concept "
                "with role = 'validation' or data.validation_split); name a step instead"
            )
        return min(scored, key=lambda s: (s.eval_loss, -s.step))
    try:
        step = int(which)
    except ValueError:
        raise PickError(f"save: expected a step number, 'best' or 'last', got {which!r}") from None
    for save in saves:
        if save.step == step:
            return save
    steps = ", ".join(str(s.step) for s in saves)
    raise PickError(f"run {run.name!r} has no save of step {step} on disk; its saves: steps {steps}")


def read_pick(run: RunDir) -> dict[str, Any] | None:
    """The run's pick note (step, source, eval_loss, ...), None without one."""
    note = run.output / (output_name(run) + PICK_SUFFIX)
    try:
        data = json.loads(note.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("step"), int) else None


@dataclass(frozen=True)
class Picked:
    save: Save
    target: Path  # output/<name>.safetensors
    kept: list[tuple[Path, Path]]  # what held the name before, and where it is now


def pick(run: RunDir, which: str) -> Picked:
    """Make save `which` the run's output: see the module docstring for what moves where."""
    save = find_save(run, which)
    name = output_name(run)
    folder = run.output
    target = folder / f"{name}.safetensors"
    kept: list[tuple[Path, Path]] = []
    if save.stem != name:
        previous = read_pick(run)
        if previous is not None:  # an earlier pick: a copy of a save still on disk (else keep it)
            source = folder / str(previous.get("source", ""))
            if source.name != target.name and source.is_file() and source.parent == folder:
                for path in save_entries(folder, name):
                    shutil.rmtree(path) if path.is_dir() else path.unlink()
        if save_entries(folder, name):  # the final save (or a file of unknown origin): kept under its step
            final = [s for s in list_saves(run) if s.final and s.path.name == f"{name}.safetensors"]
            if final:
                kept = retire_final(folder, name, final[0].step)
            else:
                stem = free_stem(folder, f"{name}-kept")
                for path in save_entries(folder, name):
                    moved = folder / (stem + path.name[len(name):])
                    os.rename(path, moved)
                    kept.append((path, moved))
        for path in save_entries(folder, save.stem):
            _copy(path, folder / (name + path.name[len(save.stem):]))
    # source: the save's own file (picking the final itself copies nothing: the note alone marks it).
    note = {"step": save.step, "epoch": save.epoch, "source": save.path.name, "eval_loss": save.eval_loss,
            "picked_at": time.time()}
    tmp = folder / f".{name}{PICK_SUFFIX}.tmp"
    tmp.write_text(json.dumps(note, indent=1) + "\n")
    os.replace(tmp, folder / f"{name}{PICK_SUFFIX}")
    return Picked(save, target, kept)


def _copy(source: Path, target: Path) -> None:
    """Copy a file or folder to `target` through a hidden temporary name, so `target` is whole or absent."""
    tmp = target.with_name(f".{target.name}.tmp")
    if source.is_dir():
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(source, tmp)
    else:
        shutil.copy2(source, tmp)
    os.replace(tmp, target)
