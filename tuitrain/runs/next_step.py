"""What the user should do next with a run, read from the run's state: the home screen shows it.

A new user's "what next" used to be a toast that went away after a minute. Each step
here is "done" when the run's own state says so (it has a data folder, its data was
scanned, the trainer has started, it finished), never by a flag that a screen writes,
so the hint is right after a restart, for runs made with the CLI, and from any machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuitrain.runs.layout import RunDir
from tuitrain.runs.state import RunState, RunStatus, run_status
from tuitrain.tomlcompat import tomllib


@dataclass(frozen=True)
class NextStep:
    keys: str  # the keys on the home screen that do it ("" when there is nothing to press)
    text: str  # what it does, short enough for one line at 80 columns with the keys


NO_RUNS = NextStep("n", "make a run (or: tuitrain new NAME --preset sd15-lora --data DIR)")


def _concepts(run: RunDir) -> list[tuple[Path, bool]] | None:
    """(folder, recursive) of each data concept in the raw config; None when the config does not parse."""
    try:
        data: dict[str, Any] = tomllib.loads(run.config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    section = data.get("data") if isinstance(data.get("data"), dict) else {}
    found = []
    for concept in section.get("concepts", []) if isinstance(section.get("concepts"), list) else []:
        if isinstance(concept, dict) and concept.get("path"):
            folder = Path(str(concept["path"])).expanduser()
            found.append((folder if folder.is_absolute() else run.root / folder, bool(concept.get("recursive"))))
    return found


def data_was_scanned(folders: list[tuple[Path, bool]], cache_dir: Path | None = None) -> bool:
    """Whether every data folder has been gone through (the review, `tuitrain check`): its scan cache exists."""
    from tuitrain.dataset.scancache import ScanCache

    return all(
        ScanCache.for_folder(folder, recursive=recursive, cache_dir=cache_dir).file.is_file()
        for folder, recursive in folders
    )


def next_step(run: RunDir, status: RunStatus | None = None, *, cache_dir: Path | None = None) -> NextStep:
    """The one thing to do next with `run`; `status` when the caller has it already (the home screen's refresh)."""
    status = status or run_status(run)
    if status.state is RunState.NEW:
        concepts = _concepts(run)
        if concepts is None:
            return NextStep("e", "fix its config: it does not parse (tuitrain check says where)")
        if not concepts:
            return NextStep("e", "give it a data folder (Data tab: concepts)")
        if not data_was_scanned(concepts, cache_dir):
            return NextStep("d", "review its data: Delete culls, c edits a caption, r checks it")
        return NextStep("o t", "train it: o opens its dashboard, t there starts the trainer")
    if status.state in (RunState.RUNNING, RunState.PAUSED):
        return NextStep("o", "watch it: loss, samples, log (d there detaches; the run goes on)")
    if status.state is RunState.FINISHED:
        return NextStep("o", f"see its samples; the trained files are in {run.output}")
    if status.state is RunState.STOPPED:
        return NextStep("o t", "resume it: o opens its dashboard, t there goes on from its last backup")
    return NextStep("o", "see what went wrong in its log; t there tries again from its last backup")
