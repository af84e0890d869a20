"""Deleting a run without losing it: the run folder moves, by rename, into the workspace's trash.

    <workspace>/.tuitrain-trash/<run>-<YYYYmmdd-HHMMSS>/    (the run folder, untouched)

Like culling images (the dataset's .tuitrain-trash): nothing is copied and nothing is
deleted, so a restore gives back the same folder, inode for inode; only
`empty_run_trash(confirm=True)` deletes. One rename is atomic, so a crash leaves the
run either in place or in the trash, never half-moved. A live run is refused: its
trainer would go on writing into a folder the user thinks is gone.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from tuitrain.runs.layout import RunDir
from tuitrain.runs.permissions import make_private_dir, tighten
from tuitrain.runs.pidfile import is_alive, read_pidfile
from tuitrain.runs.state import RunState, run_status

TRASH_DIR_NAME = ".tuitrain-trash"
_STAMP = "%Y%m%d-%H%M%S"
_TRASHED = re.compile(r"^(?P<name>.+)-(?P<when>\d{8}-\d{6})(?:-(?P<n>\d+))?$")


class RunTrashError(Exception):
    """Why a run cannot go to (or come back from) the trash, in words meant for the user."""


@dataclass(frozen=True)
class TrashedRun:
    """A deleted run: its folder in the trash, the name it had, and when it was deleted."""

    name: str
    path: Path
    deleted_at: float

    @property
    def folder_name(self) -> str:
        return self.path.name


def run_trash_dir(workspace: Path) -> Path:
    return Path(workspace) / TRASH_DIR_NAME


def live_reason(run: RunDir) -> str:
    """Why `run` must not be moved now ('' when it may): it is running or paused, or its trainer lives."""
    status = run_status(run)
    if status.state in (RunState.RUNNING, RunState.PAUSED):
        return f"run {run.name} is {status.state.value}: stop it first (tuitrain attach {run.name}, then x)"
    proc = read_pidfile(run.pidfile)
    if proc is not None and is_alive(proc):  # e.g. still writing its final save after "finished"
        return f"the trainer of run {run.name} (pid {proc.pid}) is still running: wait for it to exit, or stop it"
    return ""


def trash_run(run: RunDir) -> TrashedRun:
    """Move a run of the workspace into its trash; RunTrashError when it is live or cannot move."""
    if not run.is_run():
        raise RunTrashError(f"{run.root} is not a run (it has no config.toml)")
    reason = live_reason(run)
    if reason:
        raise RunTrashError(reason)
    trash = run_trash_dir(run.root.parent)
    make_private_dir(trash)
    stamp = time.strftime(_STAMP)
    for n in range(1, 1000):
        target = trash / (f"{run.name}-{stamp}" if n == 1 else f"{run.name}-{stamp}-{n}")
        if os.path.lexists(target):
            continue
        try:
            # A rename, never a copy: a run that would need one (another file system) stays where it is.
            os.rename(run.root, target)
        except OSError as error:
            if error.errno in (errno.EEXIST, errno.ENOTEMPTY):
                continue  # the name was taken meanwhile
            raise RunTrashError(_cannot_move(run.root, target, error)) from None
        _fsync_dirs(run.root.parent, trash)
        return TrashedRun(run.name, target, time.time())
    raise RunTrashError(f"no free name in {trash} for run {run.name}")


def list_trashed_runs(workspace: Path) -> list[TrashedRun]:
    """The deleted runs, oldest first (undo takes the last). Folders in the trash that are not runs are left out."""
    trash = run_trash_dir(workspace)
    try:
        names = os.listdir(trash)
    except OSError:
        return []
    found: list[tuple[float, int, int, TrashedRun]] = []
    for folder in names:
        match = _TRASHED.match(folder)
        path = trash / folder
        if match is None or not RunDir(path).is_run():
            continue
        try:
            when = time.mktime(time.strptime(match["when"], _STAMP))
        except (ValueError, OverflowError):
            continue
        try:
            moved_ns = os.lstat(path).st_ctime_ns  # the rename sets it: orders deletions within one second
        except OSError:
            continue
        found.append((when, moved_ns, int(match["n"] or 1), TrashedRun(match["name"], path, when)))
    return [item for *_key, item in sorted(found, key=lambda f: f[:3])]


def find_trashed_run(workspace: Path, which: str | None = None) -> TrashedRun | None:
    """The newest deleted run, or the newest deletion of the run named `which` (or the trash folder `which`)."""
    trashed = list_trashed_runs(workspace)
    if which is not None:
        trashed = [t for t in trashed if which in (t.name, t.folder_name)]
    return trashed[-1] if trashed else None


def restore_run(workspace: Path, trashed: TrashedRun) -> RunDir:
    """Move a deleted run back under its name, or '<name>-restored' ('-restored-2', ...) if that is taken."""
    workspace = Path(workspace)
    for n in range(1, 1000):
        name = trashed.name if n == 1 else f"{trashed.name}-restored" + ("" if n == 2 else f"-{n - 1}")
        target = workspace / name
        if os.path.lexists(target):
            continue
        try:
            os.rename(trashed.path, target)
        except FileNotFoundError:
            raise RunTrashError(f"{trashed.path} is no longer in the trash") from None
        except OSError as error:
            if error.errno in (errno.EEXIST, errno.ENOTEMPTY):
                continue
            raise RunTrashError(_cannot_move(trashed.path, target, error)) from None
        _fsync_dirs(workspace, trashed.path.parent)
        tighten(target)
        _remove_trash_if_empty(workspace)
        return RunDir(target)
    raise RunTrashError(f"no free name in {workspace} to restore run {trashed.name}")


def trashed_size(trashed: TrashedRun) -> int:
    """Bytes the deleted run takes (what emptying the trash frees); links are not followed."""
    total = 0
    for folder, _dirs, files in os.walk(trashed.path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(folder, name)).st_size
    return total


def empty_run_trash(workspace: Path, *, confirm: bool) -> int:
    """Delete every deleted run for good; returns how many. The asking happens in the UI.

    A run folder that was a symlink (a run kept on another disk) loses only the link.
    """
    if confirm is not True:
        raise PermissionError("empty_run_trash deletes runs for good: call it with confirm=True after asking")
    trashed = list_trashed_runs(workspace)
    for item in trashed:
        if item.path.is_symlink():
            item.path.unlink()
        else:
            shutil.rmtree(item.path)
    _remove_trash_if_empty(workspace)
    return len(trashed)


def _remove_trash_if_empty(workspace: Path) -> None:
    with contextlib.suppress(OSError):  # not empty (a stranger's file) or gone: leave it
        run_trash_dir(workspace).rmdir()


def _cannot_move(source: Path, target: Path, error: OSError) -> str:
    if error.errno == errno.EXDEV:
        return (f"cannot move {source} to {target}: they are on different file systems, and tuitrain moves runs "
                f"by rename only (never a copy)")
    return f"cannot move {source} to {target}: {error.strerror or error}"


def _fsync_dirs(*folders: Path) -> None:
    """Make the rename durable, where the file system allows."""
    for folder in folders:
        with contextlib.suppress(OSError):
            fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
