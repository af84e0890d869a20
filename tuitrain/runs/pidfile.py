"""Which process is a run's live trainer, robust against PID reuse.

The trainer writes its PID with its process start time; a run is alive only if
a process with that PID exists *and* started at that time. So a trainer killed by
SIGKILL or the OOM killer is never mistaken for a live one, even after reboot.

`train --detach` writes the file for the process it starts, before that process has
imported torch; the trainer writes it again itself. `written` (when the file was written)
tells a new attempt apart from the events of the last one (runs/state.py).
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path


def process_start_ticks(pid: int) -> int | None:
    """The process start time in clock ticks since boot (Linux), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after it.
    fields = stat[stat.rfind(")") + 2 :].split()
    try:
        return int(fields[19])  # field 22 of the whole line
    except (IndexError, ValueError):
        return None


@dataclass(frozen=True)
class TrainerProcess:
    pid: int
    start_ticks: int | None
    host: str
    written: float | None = None  # time.time() when the file was written (None: an older file)


def write_pidfile(path: Path, pid: int | None = None) -> TrainerProcess:
    pid = os.getpid() if pid is None else pid
    proc = TrainerProcess(pid, process_start_ticks(pid), socket.gethostname(), time.time())
    tmp = path.with_name(path.name + ".tmp")
    # Owner-only whatever the writer's umask: the launcher (`train --detach`) writes it too, not only the trainer.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        os.fchmod(fd, 0o600)
        fh.write(json.dumps(proc.__dict__))
    os.replace(tmp, path)
    return proc


def read_pidfile(path: Path) -> TrainerProcess | None:
    try:
        data = json.loads(path.read_text())
        written = data.get("written")
        return TrainerProcess(int(data["pid"]), data.get("start_ticks"), str(data.get("host", "")),
                              float(written) if isinstance(written, (int, float)) else None)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def is_alive(proc: TrainerProcess) -> bool:
    if proc.host and proc.host != socket.gethostname():
        return False  # a workspace on a shared disk: we cannot see that machine's processes
    try:
        os.kill(proc.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    if proc.start_ticks is not None:
        now = process_start_ticks(proc.pid)
        if now is not None and now != proc.start_ticks:
            return False  # the PID was reused by another process
        if now is not None:
            return not _is_zombie(proc.pid)
    return True


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :].split()[0] == "Z"
