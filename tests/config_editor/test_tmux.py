"""A real terminal: `tuitrain config FILE` in tmux, one field edited with keys, Ctrl+S, quit.

tmux runs on a private socket with a fixed size (as tests/tui/test_tmux.py does), so the
test never touches a tmux the developer is using. The TOML on disk is checked afterwards:
the edited value changed and nothing else did.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tuitrain.config import load_config
from tuitrain.config.io import config_data

TMUX = shutil.which("tmux")
SESSION = "config"


class Tmux:
    """One detached tmux session on its own socket."""

    def __init__(self, socket: Path) -> None:
        assert TMUX is not None, "this test needs tmux: apt-get install tmux"
        self.base = [TMUX, "-S", str(socket), "-f", "/dev/null"]

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.base, *args], capture_output=True, text=True, timeout=30)

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", SESSION).stdout

    def wait_for(self, *texts: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if all(text in screen for text in texts):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{texts} not on screen after {timeout} s; the pane shows:\n{screen}")
            time.sleep(0.1)

    def keys(self, *keys: str) -> None:
        assert self("send-keys", "-t", SESSION, *keys).returncode == 0

    def wait_closed(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while self("has-session", "-t", SESSION).returncode == 0:
            assert time.monotonic() < deadline, self.screen()
            time.sleep(0.1)


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    session = Tmux(tmp_path / "tmux.sock")
    try:
        yield session
    finally:
        session("kill-server")


def test_edit_and_save_a_field_in_tmux(tmux: Tmux, run_config: Path) -> None:
    before = config_data(load_config(run_config))
    env = {
        "TERM": "xterm-256color",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        **{k: os.environ[k] for k in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "TUITRAIN_WORKSPACE") if k in os.environ},
    }
    command = " ".join(["env", "-u", "COLUMNS", "-u", "LINES", *(f"{k}={v}" for k, v in env.items()),
                        sys.executable, "-m", "tuitrain", "config", str(run_config)])
    started = tmux("new-session", "-d", "-s", SESSION, "-x", "120", "-y", "40", command)
    assert started.returncode == 0, started.stderr
    tmux("set-option", "-s", "escape-time", "10")

    tmux.wait_for("preset sdxl-lora", "saved", "1 Model", "^s Save")
    tmux.keys("M-5")  # alt+5: the Method tab, cursor in its first field (lora.type)
    tmux.wait_for("[lora]", "used by training.method", "lora.type")
    tmux.keys("Tab", "Tab")  # lokr_factor, then rank
    tmux.wait_for("lora.rank")  # the help panel follows the cursor
    tmux.keys("C-a", "C-k")
    # The field's own check, at once. Waiting for it also keeps the next key from overtaking
    # ctrl+k: Textual runs a widget's binding once the key has bubbled up to the app, while a
    # printable key sent within milliseconds goes straight into the input.
    tmux.wait_for("must be a whole number, got ''")
    tmux.keys("-l", "8")
    tmux.wait_for("unsaved changes", "● rank")
    tmux.keys("C-s")
    tmux.wait_for("Saved", "  ·  saved")
    tmux.keys("Escape")  # nothing unsaved: closes at once
    tmux.wait_closed()

    after = config_data(load_config(run_config))
    assert after["lora"]["rank"] == 8
    before["lora"]["rank"] = 8
    assert after == before  # nothing but the edited value changed
