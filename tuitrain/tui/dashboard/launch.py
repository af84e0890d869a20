"""Starting a run's trainer from the TUI: exactly `tuitrain train RUN --detach`.

Running the command (rather than calling its code in the TUI's process) gives
the same checks and messages as the shell (cannot train: ..., already running)
and keeps the readiness check's imports out of the TUI. The command starts the
trainer with cmd_train._detach: its own session, so it outlives the TUI, the SSH
login and tmux.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from dataclasses import dataclass

from tuitrain.runs.layout import RunDir
from tuitrain.runs.pidfile import TrainerProcess, process_start_ticks

_PID = re.compile(r"\(pid (\d+)\)")


@dataclass(frozen=True)
class Launch:
    ok: bool
    message: str  # what the command said (its last lines)
    process: TrainerProcess | None = None  # the trainer it started, when it said so


def start_training(run: RunDir, *extra: str, timeout: float = 120) -> Launch:
    """Run `tuitrain train RUN --detach [EXTRA]` and report what happened (blocking: call it on a thread).

    `extra`: `--more-epochs N` or `--as-new NAME` for a finished run.
    """
    try:
        done = subprocess.run(
            [sys.executable, "-m", "tuitrain", "train", str(run.root), "--detach", *extra],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return Launch(False, f"could not run tuitrain train: {exc}")
    said = "\n".join(line for line in (done.stdout + done.stderr).splitlines() if line.strip())
    if done.returncode != 0:
        return Launch(False, said or f"tuitrain train exited with {done.returncode}")
    found = _PID.search(done.stdout)
    process = None
    if found:
        pid = int(found.group(1))
        process = TrainerProcess(pid, process_start_ticks(pid), socket.gethostname())
    return Launch(True, said, process)
