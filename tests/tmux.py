"""A private tmux server for the terminal tests: its own socket, no user config, one session.

`start_tuitrain` opens `python -m tuitrain ARGS` in a pane of a fixed size with the test's
isolated environment, so the test never touches a tmux the developer is using.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

TMUX = shutil.which("tmux")
REPO = Path(__file__).resolve().parents[1]


class Tmux:
    def __init__(self, socket: Path, session: str) -> None:
        assert TMUX is not None, "this test needs tmux: apt-get install tmux (.ci/run installs it)"
        self.base = [TMUX, "-S", str(socket), "-f", "/dev/null"]
        self.session = session

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.base, *args], capture_output=True, text=True, timeout=30)

    def start_tuitrain(self, *args: str, env: dict[str, str] | None = None, size: tuple[int, int] = (120, 40)) -> None:
        """`tuitrain ARGS` in the session's pane; TUITRAIN_IMAGE_PROTOCOL only when `env` sets it."""
        values = {
            "TERM": "xterm-256color",
            "COLORTERM": "truecolor",
            "PYTHONPATH": str(REPO),
            **{k: os.environ[k] for k in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "TUITRAIN_WORKSPACE") if k in os.environ},
            **(env or {}),
        }
        unset = ["-u", "COLUMNS", "-u", "LINES", "-u", "TUITRAIN_IMAGE_PROTOCOL"]  # COLUMNS/LINES: pytest's 80x24
        command = " ".join(["env", *unset, *(f"{k}={v}" for k, v in values.items()), sys.executable, "-m", "tuitrain",
                            *args])
        started = self("new-session", "-d", "-s", self.session, "-x", str(size[0]), "-y", str(size[1]), command)
        assert started.returncode == 0, started.stderr
        self("set-option", "-s", "escape-time", "10")

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", self.session).stdout

    def wait_for(self, *texts: str, timeout: float = 30.0) -> str:
        """Poll the pane until every text is on it; fail with what the pane shows."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if all(text in screen for text in texts):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{texts} not on screen after {timeout} s; the pane shows:\n{screen}")
            time.sleep(0.1)

    def wait_gone(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while text in (screen := self.screen()):
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} still on screen after {timeout} s:\n{screen}")
            time.sleep(0.1)

    def wait_for_picture(self, cells: int, timeout: float = 30.0) -> str:
        """Poll until at least `cells` half-cells are on the pane (the picture arrives from a thread)."""
        deadline = time.monotonic() + timeout
        while (screen := self.screen()).count("▀") < cells:
            if time.monotonic() > deadline:
                raise AssertionError(f"no picture of {cells} half-cells after {timeout} s; the pane shows:\n{screen}")
            time.sleep(0.1)
        return screen

    def keys(self, *keys: str) -> None:
        assert self("send-keys", "-t", self.session, *keys).returncode == 0

    def wait_closed(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while self("has-session", "-t", self.session).returncode == 0:
            assert time.monotonic() < deadline, self.screen()
            time.sleep(0.1)
