"""Training in this process, in front of the user: `tuitrain train RUN` and `tuitrain demo --headless`.

One path for both: the trainer's events on the terminal (cli/train_display.py), its libraries'
warnings in trainer.log only (runs/library_output.py), and a failure said once, with where its
traceback is, rather than the message, a "failed" line and a Python traceback on top.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

from tuitrain.config import Config
from tuitrain.runs.layout import RunDir


def train_in_foreground(run: RunDir, config: Config, config_dir: Path) -> int:
    """Train `run` with `config` here and now; returns the process exit code."""
    from tuitrain.runs.pidfile import write_pidfile

    # This process is the trainer: said before torch is imported (seconds), so `tuitrain runs` elsewhere
    # says "running (starting)" at once, as after `train --detach` (the trainer writes it again itself).
    write_pidfile(run.pidfile)
    from tuitrain.cli.train_display import RichDisplay
    from tuitrain.runs.library_output import library_output_to
    from tuitrain.runs.permissions import open_run_log
    from tuitrain.runs.threads import limit_threads

    limit_threads()  # before torch loads: its thread pool reads them once (runs/threads.py)
    from tuitrain.trainer.loop import run_training

    log = io.TextIOWrapper(open_run_log(run), encoding="utf-8", errors="backslashreplace", line_buffering=True)
    with log, library_output_to(log), RichDisplay() as display:
        try:
            return run_training(run, config, config_dir, display)
        except Exception:
            if display.error is None:
                raise  # it failed before it could say why: the traceback is all there is
            where = display.error.get("traceback_path")
            if where:
                display.console.print(f"(the traceback is in {where})", markup=False, highlight=False)
            return 1


def train_processes_in_foreground(run: RunDir, detach: Callable[..., int]) -> int:
    """A run of several processes (distributed.processes), in front of the user: its launcher starts in its
    own session, as with --detach (torchrun must not see the terminal's Ctrl-C: it would kill the ranks
    mid-step), and its events are shown as they are written. Ctrl-C asks the run to stop (it saves first)."""
    import time

    from tuitrain.cli.train_display import RichDisplay
    from tuitrain.runs.control import send_command
    from tuitrain.runs.follow import RunFollower

    follower = RunFollower(run, lambda batch: None)
    for _ in follower.read():  # the history so far (an earlier attempt's end must not end this one)
        pass
    detach(run, True, True)
    finished: dict | None = None
    with RichDisplay() as display:
        while finished is None:
            try:
                for batch in follower.read():
                    for event in batch.events:
                        display(event)
                        if event.get("type") == "finished":
                            finished = event
                    if finished is None and not batch.alive and not batch.events:
                        time.sleep(1.0)  # between the launcher's exit and its last event: one more look
                        tail = [e for b in follower.read() for e in b.events]
                        for event in tail:
                            display(event)
                        finished = next((e for e in reversed(tail) if e.get("type") == "finished"),
                                        {"status": "failed"})
                time.sleep(0.2)
            except KeyboardInterrupt:
                display.console.print("Stopping: every process saves at the same step, then stops.")
                try:
                    send_command(run.socket, "stop")
                except OSError:
                    pass
    return 0 if finished.get("status") in ("completed", "stopped") else 1
