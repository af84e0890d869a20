"""What state a run is in, read from its directory alone.

The event log says what the trainer last reported; the PID file says whether it
is still alive. A log that says "running" from a dead process is a failed run —
never a stale "running".
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from tuitrain.runs.events import tail_events
from tuitrain.runs.layout import RunDir
from tuitrain.runs.pidfile import is_alive, read_pidfile


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


def run_status(run: RunDir) -> RunStatus:
    events = tail_events(run.events)
    proc = read_pidfile(run.pidfile)
    alive = proc is not None and is_alive(proc)

    step: int | None = None
    total: int | None = None
    for event in events:
        if isinstance(event.get("step"), int):
            step = event["step"]
        if event["type"] == "started" and isinstance(event.get("total_steps"), int):
            total = event["total_steps"]

    last = next((e for e in reversed(events) if e["type"] in ("started", "finished", "paused", "resumed")), None)
    if last is None:
        if alive:
            return RunStatus(RunState.RUNNING, "starting", step, total)
        if run.events.exists() and run.events.stat().st_size > 0 and not events:
            return RunStatus(RunState.FAILED, "the event log cannot be read", step, total)
        return RunStatus(RunState.NEW, "", step, total)

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
