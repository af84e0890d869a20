"""`tuitrain delete RUN...`: move runs to the workspace's trash, and get them back.

Worded like `tuitrain cull`: --list-trash, --undo [RUN] and --empty-trash [--yes].
Deleting is a rename into <workspace>/.tuitrain-trash/, so it is undone exactly;
only --empty-trash deletes, and it asks first. A running or paused run is refused.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from tuitrain.cli.common import confirmed, workspace
from tuitrain.cli.main import EXIT_CANNOT_TRAIN, UserError
from tuitrain.runs import RunDir, list_runs
from tuitrain.runs.trash import (
    RunTrashError,
    TrashedRun,
    empty_run_trash,
    find_trashed_run,
    list_trashed_runs,
    live_reason,
    restore_run,
    trash_run,
    trashed_size,
)

_MODES = ("list_trash", "undo", "empty_trash")


def run(args: argparse.Namespace) -> int:
    ws = workspace(args)
    chosen = [name for name in _MODES if getattr(args, name, False)]
    if len(chosen) > 1:
        raise UserError("use one of --list-trash, --undo and --empty-trash at a time")
    if args.yes and not args.empty_trash:
        raise UserError("--yes only goes with --empty-trash")
    if args.list_trash or args.empty_trash:
        if args.runs:
            raise UserError(f"{'--list-trash' if args.list_trash else '--empty-trash'} takes no RUN")
        return _list(ws) if args.list_trash else _empty(ws, args.yes)
    if args.undo:
        if len(args.runs) > 1:
            raise UserError("--undo restores one run at a time")
        return _undo(ws, args.runs[0] if args.runs else None)
    if not args.runs:
        raise UserError("name the run(s) to delete: tuitrain delete RUN (tuitrain runs lists them)")
    return _delete(ws, args.runs)


def _resolve(arg: str, ws: Path) -> RunDir:
    """A run of the workspace, by name or by its folder's path; anything else is a UserError."""
    if os.sep in arg or arg.startswith("."):
        run = RunDir(Path(arg).expanduser().resolve())
        if run.root.parent != ws:
            raise UserError(f"{arg}: not a run of the workspace {ws} (tuitrain deletes only its own runs)")
    else:
        run = RunDir(ws / arg)
    if not run.is_run():
        import difflib

        names = [r.name for r in list_runs(ws)]
        near = difflib.get_close_matches(run.name, names, n=1)
        hint = f"; did you mean {near[0]}?" if near else ""
        raise UserError(f"{arg}: no such run in the workspace {ws}{hint}")
    return run


def _delete(ws: Path, args: list[str]) -> int:
    runs = []
    for arg in args:
        run = _resolve(arg, ws)
        if run.root not in [r.root for r in runs]:
            runs.append(run)
    refused = [reason for reason in (live_reason(run) for run in runs) if reason]
    if refused:  # all or nothing: a typo in a list must not leave half of it deleted
        for reason in refused:
            print(f"cannot delete: {reason}", file=sys.stderr)
        print("Nothing deleted.", file=sys.stderr)
        return EXIT_CANNOT_TRAIN
    for run in runs:
        try:
            trashed = trash_run(run)
        except RunTrashError as exc:
            print(f"cannot delete: {exc}", file=sys.stderr)
            return EXIT_CANNOT_TRAIN
        print(f"Moved run {run.name} to the trash: {trashed.path}")
    if len(runs) == 1:
        print("Undo: tuitrain delete --undo")
    else:
        print("Undo: tuitrain delete --undo RUN (or --undo alone, once per run: the newest first)")
    return 0


def _describe(trashed: TrashedRun) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(trashed.deleted_at))
    return f"{when}  {trashed.name}  ({_size(trashed_size(trashed))}; {trashed.path})"


def _size(size: float) -> str:
    if size < 1000:
        return f"{int(size)} bytes"
    for unit in ("KB", "MB", "GB"):
        size /= 1000
        if size < 1000 or unit == "GB":
            break
    return f"{size:.1f} {unit}"


def _list(ws: Path) -> int:
    trashed = list_trashed_runs(ws)
    if not trashed:
        print(f"Nothing in the run trash of {ws}")
        return 0
    print(f"{ws}: {len(trashed)} deleted run(s) (oldest first; --undo restores the newest, --undo RUN that run)")
    for item in trashed:
        print("  " + _describe(item))
    return 0


def _undo(ws: Path, which: str | None) -> int:
    trashed = find_trashed_run(ws, which)
    if trashed is None:
        if which is None:
            print(f"Nothing to undo: the run trash of {ws} is empty", file=sys.stderr)
            return EXIT_CANNOT_TRAIN
        names = sorted({t.name for t in list_trashed_runs(ws)})
        there = f"; deleted runs: {', '.join(names)}" if names else "; the run trash is empty"
        raise UserError(f"{which}: no deleted run of that name in {ws}{there}")
    try:
        run = restore_run(ws, trashed)
    except RunTrashError as exc:
        print(f"cannot restore: {exc}", file=sys.stderr)
        return EXIT_CANNOT_TRAIN
    if run.name == trashed.name:
        print(f"Restored run {run.name} ({run.root})")
    else:
        print(f"Restored run {trashed.name} as {run.name}: a run named {trashed.name} exists ({run.root})")
    return 0


def _empty(ws: Path, yes: bool) -> int:
    trashed = list_trashed_runs(ws)
    if not trashed:
        print(f"The run trash of {ws} is already empty")
        return 0
    if not yes:
        size = _size(sum(trashed_size(t) for t in trashed))
        if not confirmed(f"Delete {len(trashed)} deleted run(s) ({size}) for good?"):
            print("Nothing deleted.")
            return EXIT_CANNOT_TRAIN
    deleted = empty_run_trash(ws, confirm=True)
    print(f"Deleted {deleted} run(s) from the trash")
    return 0
