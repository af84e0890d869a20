"""Helpers for the dashboard tests: a fake trainer process, waiting in Pilot, tiny models."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tuitrain.runs.layout import RunDir

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def run(workspace: Path) -> RunDir:
    """An empty run directory (the dashboard needs no config to follow a fake trainer)."""
    run = RunDir(workspace / "fake")
    run.create_folders()
    return run


@pytest.fixture
def fake_trainer(run: RunDir) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start tests/dashboard/fake_trainer.py on `run` (its output goes to trainer.log, like --detach)."""
    started: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> subprocess.Popen[bytes]:
        log = open(run.log, "ab")  # noqa: SIM115 - the child owns it
        proc = subprocess.Popen([sys.executable, "-m", "tests.dashboard.fake_trainer", str(run.root), *args],
                                cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


def commands_received(run: RunDir) -> list[str]:
    path = run.root / "commands.txt"
    return path.read_text().split() if path.exists() else []


async def wait_for(pilot, predicate: Callable[[], object], what: str, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await pilot.pause(0.05)


def wait_until(predicate: Callable[[], object], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)
