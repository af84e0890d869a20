"""The workspace: the folder that holds one directory per run."""

from __future__ import annotations

import os
from pathlib import Path

from tuitrain.runs.layout import RunDir
from tuitrain.runs.permissions import tighten

ENV_VAR = "TUITRAIN_WORKSPACE"
DEFAULT = Path("~/tuitrain-runs")


def resolve_workspace(cli_value: str | None = None) -> Path:
    """--workspace, else $TUITRAIN_WORKSPACE, else ~/tuitrain-runs."""
    raw = cli_value or os.environ.get(ENV_VAR) or str(DEFAULT)
    return Path(raw).expanduser().resolve()


def list_runs(workspace: Path) -> list[RunDir]:
    """The runs of the workspace by name; hidden folders (the run trash, .trash) are not runs.

    Each run folder listed is made owner-only if an older tuitrain left it open.
    """
    if not workspace.is_dir():
        return []
    runs = [RunDir(p) for p in workspace.iterdir() if p.is_dir() and not p.name.startswith(".")]
    found = sorted((r for r in runs if r.is_run()), key=lambda r: r.name)
    for run in found:
        tighten(run.root)
    return found


class RunNotFound(LookupError):
    pass


def _tighten_if_in(run: RunDir, workspace: Path) -> None:
    if run.root.parent == Path(workspace).resolve():
        tighten(run.root)


def find_run(arg: str, workspace: Path) -> tuple[RunDir | None, Path]:
    """Resolve a RUN|CONFIG argument to (run directory or None, config file).

    Accepts a config file, a run directory, or the name of a run in the workspace.
    A run of the workspace is made owner-only if an older tuitrain left it open (a
    folder elsewhere is the user's own: its mode is theirs to choose).
    """
    path = Path(arg).expanduser()
    if path.is_file():
        parent = RunDir(path.resolve().parent)
        run = parent if parent.config == path.resolve() else None
        if run is not None:
            _tighten_if_in(run, workspace)
        return run, path.resolve()
    if path.is_dir():
        run = RunDir(path.resolve())
        if run.is_run():
            _tighten_if_in(run, workspace)
            return run, run.config
        raise RunNotFound(f"{arg}: folder has no config.toml, so it is not a run directory")
    run = RunDir(workspace / arg)
    if os.sep not in arg and run.is_run():
        tighten(run.root)
        return run, run.config
    names = [r.name for r in list_runs(workspace)]
    import difflib

    from tuitrain.runs.trash import find_trashed_run

    near = difflib.get_close_matches(arg, names, n=1)
    hint = f"; did you mean {near[0]}?" if near else (f"; runs there: {', '.join(names)}" if names else "")
    if os.sep not in arg and find_trashed_run(workspace, arg) is not None:
        hint = f"; it was deleted: tuitrain delete --undo {arg} brings it back"
    raise RunNotFound(f"{arg}: no such config file, run directory, or run in workspace {workspace}{hint}")
