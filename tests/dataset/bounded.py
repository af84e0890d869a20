"""Running a command that might hang or run away on a hostile file, without taking the machine with it.

The process gets an address-space limit (a runaway allocation fails with MemoryError
instead of waking the OOM killer on a shared box) and a wall-clock timeout (a read that
blocks forever fails the test instead of hanging the suite).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GIB = 1 << 30


def run_bounded(args: list[str], *, timeout: float = 120, memory: int = 3 * GIB, cwd: Path | None = None,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python ARGS` with at most `memory` bytes of address space; TimeoutExpired after `timeout` seconds."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=limit,
        cwd=cwd or REPO,
        env={**os.environ, **(env or {})},
    )


def tuitrain(*args: str, timeout: float = 120, memory: int = 2 * GIB) -> subprocess.CompletedProcess[str]:
    """`tuitrain ARGS` as a user runs it, bounded (the light commands never need 2 GiB)."""
    return run_bounded(["-m", "tuitrain", *args], timeout=timeout, memory=memory)
