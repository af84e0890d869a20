"""A real terminal: `tuitrain cull DIR` in tmux, driven with send-keys, read with capture-pane.

The folder is checked on disk afterwards: culled and restored, a caption written,
nothing lost. tmux runs on a private socket with a fixed size, so the test never
touches a tmux the developer is using.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tui.conftest import make_dataset

TMUX = shutil.which("tmux")


class Tmux:
    """One detached tmux session on its own socket."""

    def __init__(self, socket: Path) -> None:
        assert TMUX is not None, "this test needs tmux: apt-get install tmux"
        self.base = [TMUX, "-S", str(socket), "-f", "/dev/null"]

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.base, *args], capture_output=True, text=True, timeout=30)

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "review").stdout

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
        assert self("send-keys", "-t", "review", *keys).returncode == 0


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    session = Tmux(tmp_path / "tmux.sock")
    try:
        yield session
    finally:
        session("kill-server")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def start_cull(tmux: Tmux, folder: Path, protocol: str | None) -> None:
    """`tuitrain cull FOLDER` in a 120x40 pane (with `protocol` forced through the environment)."""
    env = {
        "TERM": "xterm-256color",
        "COLORTERM": "truecolor",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        **{k: os.environ[k] for k in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "TUITRAIN_WORKSPACE") if k in os.environ},
    }
    unset = ["-u", "COLUMNS", "-u", "LINES", "-u", "TUITRAIN_IMAGE_PROTOCOL"]  # COLUMNS/LINES: pytest's 80x24
    if protocol:
        env["TUITRAIN_IMAGE_PROTOCOL"] = protocol
    command = " ".join(
        ["env", *unset, *(f"{k}={v}" for k, v in env.items()), sys.executable, "-m", "tuitrain", "cull", str(folder),
         "--resolution", "64"]
    )
    started = tmux("new-session", "-d", "-s", "review", "-x", "120", "-y", "40", command)
    assert started.returncode == 0, started.stderr
    tmux("set-option", "-s", "escape-time", "10")


def test_cull_in_tmux(tmux: Tmux, tmp_path: Path) -> None:
    folder = make_dataset(tmp_path / "faery-set", fmt="JPEG")
    before = {p.name: digest(p) for p in folder.iterdir()}
    start_cull(tmux, folder, "halfcell")

    tmux.wait_for("faery-set", "1/6", "a.jpg", "a red fox")
    screen = tmux.wait_for_picture(1000)  # a.jpg is 96x64: 70x23 half-cells in a 120x40 pane
    assert max(len(line) for line in screen.splitlines()) == 120, screen  # sized to the pane
    tmux.wait_for("del Cull", "? Help")  # the footer

    tmux.keys("Right")
    tmux.wait_for("2/6", "blue sky")
    tmux.keys("DC")  # Delete: b.jpg and b.txt go to the trash
    tmux.wait_for("1 culled", "2/5")
    assert not (folder / "b.jpg").exists() and not (folder / "b.txt").exists()
    tmux.keys("u")
    tmux.wait_for("0 culled", "2/6", "blue sky")
    assert (folder / "b.jpg").exists()

    tmux.keys("End")
    tmux.wait_for("6/6", "no caption")
    tmux.keys("c")
    tmux.wait_for("Save caption")  # the editor has the keys now (its footer is up)
    tmux.keys("-l", "an owl at dusk")
    tmux.keys("C-s")
    tmux.wait_for("Saved e.txt")
    assert (folder / "e.txt").read_text() == "an owl at dusk"

    tmux.keys("Home", "b")
    tmux.wait_for("1/6", "bucket crop", "crop 16,0 - 80,64")
    tmux.keys("r")
    tmux.wait_for("Pre-flight report", "a.jpg = faery-set/d.jpg", "broken.jpg")
    tmux.keys("Escape")  # a lone Esc: wait for it to land before the next key, or the two read as Alt+key
    tmux.wait_gone("Pre-flight report")
    tmux.keys("?")
    tmux.wait_for("review.next", "review.cull")
    tmux.keys("Escape")
    tmux.wait_gone("review.cull")
    tmux.keys("q")
    deadline = time.monotonic() + 15
    while tmux("has-session", "-t", "review").returncode == 0:
        assert time.monotonic() < deadline, tmux.screen()
        time.sleep(0.1)

    after = {p.name: digest(p) for p in folder.iterdir() if p.is_file()}
    assert after == {**before, "e.txt": hashlib.sha256(b"an owl at dusk").hexdigest()}  # nothing lost
    assert not (folder / ".tuitrain-trash").exists()


def test_auto_protocol_in_tmux_still_shows_a_picture(tmux: Tmux, tmp_path: Path) -> None:
    """Without passthrough (and with textual-image 0.12 on Python 3.11), auto falls back to half-cells."""
    start_cull(tmux, make_dataset(tmp_path / "faery-set", fmt="JPEG"), None)
    tmux.wait_for("1/6", "a.jpg")
    tmux.wait_for_picture(1000)
    tmux.keys("?")
    tmux.wait_for("Image protocol: halfcell (inside tmux")
