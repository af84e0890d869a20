"""Run state from the run directory: a dead trainer is failed, never a stale "running"."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tuitrain.runs import RunDir, RunState, find_run, run_status
from tuitrain.runs.events import EVENTS_VERSION, append_event, iter_events, make_event, tail_events
from tuitrain.runs.pidfile import read_pidfile, write_pidfile
from tuitrain.runs.workspace import RunNotFound


@pytest.fixture
def run(tmp_path: Path) -> RunDir:
    r = RunDir(tmp_path / "r")
    r.create_folders()
    r.config.write_text("")
    return r


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_never_started(run: RunDir) -> None:
    assert run_status(run).state is RunState.NEW


def test_running_then_paused_then_finished(run: RunDir) -> None:
    proc = _sleeper()
    try:
        write_pidfile(run.pidfile, proc.pid)
        append_event(run.events, make_event("started", total_steps=100))
        append_event(run.events, make_event("step", step=5, loss=0.1))
        s = run_status(run)
        assert (s.state, s.step, s.total_steps) == (RunState.RUNNING, 5, 100)
        append_event(run.events, make_event("paused", step=5))
        assert run_status(run).state is RunState.PAUSED
        append_event(run.events, make_event("resumed", step=5))
        assert run_status(run).state is RunState.RUNNING
        append_event(run.events, make_event("finished", status="completed", reason="", step=100))
        assert run_status(run).state is RunState.FINISHED
    finally:
        proc.kill()
        proc.wait()


def test_killed_trainer_is_failed_not_running(run: RunDir) -> None:
    proc = _sleeper()
    write_pidfile(run.pidfile, proc.pid)
    append_event(run.events, make_event("started", total_steps=10))
    append_event(run.events, make_event("error", message="CUDA out of memory"))
    assert run_status(run).state is RunState.RUNNING
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    status = run_status(run)
    assert status.state is RunState.FAILED
    assert "ended without finishing" in status.reason and "CUDA out of memory" in status.reason


def test_reused_pid_is_not_our_trainer(run: RunDir) -> None:
    proc = _sleeper()
    try:
        write_pidfile(run.pidfile, proc.pid)
        data = json.loads(run.pidfile.read_text())
        data["start_ticks"] -= 1  # same PID, another process start time
        run.pidfile.write_text(json.dumps(data))
        append_event(run.events, make_event("started", total_steps=10))
        assert run_status(run).state is RunState.FAILED
    finally:
        proc.kill()
        proc.wait()


def test_finished_statuses(run: RunDir) -> None:
    append_event(run.events, make_event("started", total_steps=10))
    append_event(run.events, make_event("finished", status="stopped", reason="stopped by user", step=3))
    assert run_status(run).state is RunState.STOPPED
    append_event(run.events, make_event("started", total_steps=10, resumed_from=3))
    append_event(run.events, make_event("finished", status="failed", reason="loss is NaN", step=4))
    status = run_status(run)
    assert (status.state, status.reason) == (RunState.FAILED, "loss is NaN")


def test_torn_last_line_and_unknown_events_are_skipped(run: RunDir) -> None:
    append_event(run.events, make_event("started", total_steps=10))
    with open(run.events, "ab") as fh:
        fh.write(b'{"v": 9, "type": "from_the_future", "time": 1}\n{"v":1,"type":"step","st')
    events = [e for _, e in iter_events(run.events)]
    assert [e["type"] for e in events] == ["started", "from_the_future"]
    assert events[0]["v"] == EVENTS_VERSION
    assert [e["type"] for e in tail_events(run.events)] == ["started", "from_the_future"]


def test_iter_events_resumes_from_offset(run: RunDir) -> None:
    for i in range(3):
        append_event(run.events, make_event("step", step=i))
    seen = list(iter_events(run.events))
    offset = seen[1][0]
    assert [e["step"] for _, e in iter_events(run.events, offset)] == [2]


def test_event_types_are_checked_and_nan_refused() -> None:
    with pytest.raises(ValueError):
        make_event("stepp")
    with pytest.raises(ValueError):
        append_event(Path("/dev/null"), make_event("step", loss=float("nan")))


def test_pidfile_round_trip(run: RunDir) -> None:
    proc = write_pidfile(run.pidfile)
    assert read_pidfile(run.pidfile) == proc
    run.pidfile.write_text("garbage")
    assert read_pidfile(run.pidfile) is None


def test_find_run_by_name_folder_or_file(tmp_path: Path, run: RunDir) -> None:
    ws = run.root.parent
    assert find_run("r", ws) == (run, run.config)
    assert find_run(str(run.root), tmp_path) == (run, run.config)
    other = tmp_path / "elsewhere.toml"
    other.write_text("")
    assert find_run(str(other), ws) == (None, other)
    with pytest.raises(RunNotFound, match="did you mean r"):
        find_run("rr", ws)


def test_event_log_is_owner_only(run: RunDir) -> None:
    append_event(run.events, make_event("log", level="info", message="hi"))
    assert run.events.stat().st_mode & 0o077 == 0


def test_status_is_quick_on_a_long_log(run: RunDir) -> None:
    lines = b"".join(
        json.dumps(make_event("step", step=i, loss=0.1)).encode() + b"\n" for i in range(50_000)
    )
    run.events.write_bytes(json.dumps(make_event("started", total_steps=50_000)).encode() + b"\n" + lines)
    t0 = time.perf_counter()
    status = run_status(run)
    # Reads only the tail of the log; no trainer alive -> failed, at the last step.
    assert status.state is RunState.FAILED and status.step == 49_999
    assert time.perf_counter() - t0 < 5  # generous: this guards against reading the whole file per row
