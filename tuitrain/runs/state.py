"""What state a run is in, read from its directory alone.

The event log says what the trainer last reported; the PID file says whether it
is still alive. A log that says "running" from a dead process is a failed run —
never a stale "running". The launcher writes the PID file before the trainer has
imported anything, so a run is "running (starting)" from the moment `train --detach`
returns, also when the log's last word is the "finished" of an earlier attempt.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from tuitrain.runs.events import decode_line, tail_events
from tuitrain.runs.layout import RunDir
from tuitrain.runs.pidfile import TrainerProcess, is_alive, read_pidfile


class RunState(str, Enum):
    NEW = "never started"
    RUNNING = "running"
    PAUSED = "paused"
    FINISHED = "finished"
    STOPPED = "stopped"  # stopped by the user after saving; can resume
    FAILED = "failed"


@dataclass(frozen=True)
class RunStatus:
    state: RunState
    reason: str = ""
    step: int | None = None
    total_steps: int | None = None


_FINISHED = {"completed": RunState.FINISHED, "stopped": RunState.STOPPED, "failed": RunState.FAILED}
STARTING = "starting"
DIED_STARTING = "the trainer exited while starting, before its first event (see trainer.log)"


_LIFECYCLE = ("started", "finished", "paused", "resumed")
_LIFECYCLE_MARKS = tuple(f'"{t}"'.encode() for t in _LIFECYCLE)  # cheap pre-filter; decoded to be sure
# path -> (inode, bytes scanned, last lifecycle event, last "started" event)
_scan_cache: dict[Path, tuple[int, int, dict[str, Any] | None, dict[str, Any] | None]] = {}


def _lifecycle_events(path: Path) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(last lifecycle event, last "started" event) of the whole log.

    A 100k-step run has its "started" event megabytes back; remember what was
    scanned so a screen refreshing every few seconds reads only what was added.
    """
    try:
        st = path.stat()
    except FileNotFoundError:
        _scan_cache.pop(path, None)
        return None, None
    inode, done, last, started = _scan_cache.get(path, (st.st_ino, 0, None, None))
    if inode != st.st_ino or st.st_size < done:
        done, last, started = 0, None, None
    with open(path, "rb") as fh:
        fh.seek(done)
        for line in fh:
            if not line.endswith(b"\n"):
                break
            done += len(line)
            if any(mark in line for mark in _LIFECYCLE_MARKS):
                event = decode_line(line)
                if event is not None and event["type"] in _LIFECYCLE:
                    last = event
                    if event["type"] == "started":
                        started = event
    _scan_cache[path] = (st.st_ino, done, last, started)
    return last, started


def last_started(run: RunDir) -> dict[str, Any] | None:
    """The last "started" event of the run's log (totals, steps per epoch), or None."""
    return _lifecycle_events(run.events)[1]


def _launched_after(proc: TrainerProcess | None, event: dict[str, Any]) -> bool:
    """Whether the PID file was written after `event`: its process is a later attempt than the one that said it."""
    when = event.get("time")
    return proc is not None and proc.written is not None and isinstance(when, (int, float)) and proc.written > when


def run_status(run: RunDir) -> RunStatus:
    """What the run is doing now, a new attempt that is still loading included (`tuitrain runs`, the home screen,
    `train`'s "already running")."""
    return _status(run, new_attempt=True)


def last_attempt_status(run: RunDir) -> RunStatus:
    """What the log says the last attempt came to, leaving aside a newer one that has not said anything yet.

    The continuation rules (runs/continuation.py) ask this: the trainer checks them from inside that newer
    attempt, whose PID file the launcher has already written, and must still see the run as finished.
    """
    return _status(run, new_attempt=False)


def _status(run: RunDir, *, new_attempt: bool) -> RunStatus:
    events = tail_events(run.events, max_bytes=64 * 1024)
    proc = read_pidfile(run.pidfile)
    alive = proc is not None and is_alive(proc)
    last, started = _lifecycle_events(run.events)

    step: int | None = None
    total = started.get("total_steps") if started else None
    total = total if isinstance(total, int) else None
    for event in events:
        if isinstance(event.get("step"), int):
            step = event["step"]
    if last is None:
        if alive:
            return RunStatus(RunState.RUNNING, STARTING, step, total)
        if run.events.exists() and run.events.stat().st_size > 0 and not events:
            return RunStatus(RunState.FAILED, "the event log cannot be read", step, total)
        if proc is not None:  # launched, and gone before it said anything
            return RunStatus(RunState.FAILED, DIED_STARTING, step, total)
        return RunStatus(RunState.NEW, "", step, total)

    if new_attempt and last["type"] == "finished" and _launched_after(proc, last):  # a finished run started again
        if alive:
            return RunStatus(RunState.RUNNING, STARTING, step, total)
        return RunStatus(RunState.FAILED, DIED_STARTING, step, total)
    if last["type"] == "finished":
        state = _FINISHED.get(str(last.get("status")), RunState.FAILED)
        return RunStatus(state, str(last.get("reason", "")), step, total)

    if not alive:
        last_error = next((e for e in reversed(events) if e["type"] == "error"), None)
        reason = "the trainer process ended without finishing (killed, crashed or out of memory)"
        if last_error is not None:
            reason += f"; last error: {last_error.get('message', '')}"
        return RunStatus(RunState.FAILED, reason, step, total)
    if last["type"] == "paused":
        return RunStatus(RunState.PAUSED, "", step, total)
    return RunStatus(RunState.RUNNING, "", step, total)
