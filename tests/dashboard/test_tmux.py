"""In a real terminal: start a run from the dashboard in tmux, kill tmux (the SSH drop), attach from
a new session (twice at once), see the whole history, and watch the run finish."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.dashboard.conftest import REPO, wait_until
from tests.dashboard.test_real_trainer import new_run
from tests.trainer.conftest import make_dataset, tiny_model  # noqa: F401 - tiny_model is a fixture
from tuitrain.runs.events import iter_events
from tuitrain.runs.pidfile import is_alive, read_pidfile

pytestmark = pytest.mark.slow


class Tmux:
    """A private tmux server (its own socket, no user config)."""

    def __init__(self) -> None:
        assert shutil.which("tmux"), "tmux is needed for the terminal tests (.ci/run installs it)"
        self.name = f"tuitrain-test-{uuid.uuid4().hex[:8]}"

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["tmux", "-L", self.name, "-f", "/dev/null", *args], capture_output=True, text=True,
                              timeout=20)

    def attach(self, session: str, run: Path, home: Path) -> None:
        env = (f"TUITRAIN_WORKSPACE={run.parent} XDG_CONFIG_HOME={home / 'config'} TUITRAIN_IMAGE_PROTOCOL=halfcell "
               f"TERM=xterm-256color")
        command = f"cd {REPO} && env {env} {sys.executable} -m tuitrain attach {run.name}; echo EXITED; sleep 60"
        out = self("new-session", "-d", "-s", session, "-x", "150", "-y", "44", command)
        assert out.returncode == 0, out.stderr

    def screen(self, session: str) -> str:
        return self("capture-pane", "-p", "-t", session).stdout

    def wait(self, session: str, pattern: str, timeout: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            found = re.search(pattern, self.screen(session))
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} not on the screen of {session} after {timeout} s:\n{self.screen(session)}")
            time.sleep(0.2)

    def keys(self, session: str, *keys: str) -> None:
        assert self("send-keys", "-t", session, *keys).returncode == 0

    def kill_server(self, timeout: float = 20) -> None:
        """Kill the server and wait until it is gone: `kill-server` returns while the server is still
        exiting, and a `new-session` in that window fails with "server exited unexpectedly"."""
        self("kill-server")
        deadline = time.monotonic() + timeout
        while True:
            probe = self("list-sessions")
            if probe.returncode != 0 and "exited unexpectedly" not in probe.stderr:
                return  # "no server running" / "error connecting": a new server can start
            assert time.monotonic() < deadline, f"tmux server still up {timeout} s after kill-server: {probe.stderr}"
            time.sleep(0.1)


def test_the_run_outlives_tmux_and_a_new_login_sees_all_of_it(cli, tiny_model, tmp_path: Path,  # noqa: F811
                                                               isolated_env: Path) -> None:
    run = new_run(cli, "tm", tiny_model("sd15"), make_dataset(tmp_path / "data"), "training.epochs=4",
                  "sampling.every_epochs=2")
    tmux = Tmux()
    try:
        tmux.attach("first", run.root, isolated_env)
        tmux.wait("first", r"NOT STARTED", timeout=30)
        tmux.keys("first", "t")  # start training from the TUI
        tmux.wait("first", r"RUNNING.*\n(.*\n)*.*step [1-9]\d*/16", timeout=180)
        trainer = read_pidfile(run.pidfile)
        assert trainer is not None

        tmux.kill_server()  # the SSH connection drops: tmux and the TUI are gone
        assert is_alive(trainer), "the trainer died with tmux"
        wait_until(lambda: any(e["type"] == "sample" for _, e in iter_events(run.events)), "the first samples", 120)

        tmux.attach("second", run.root, isolated_env)  # log in again
        tmux.attach("third", run.root, isolated_env)  # and a second TUI at the same time
        for session in ("second", "third"):
            tmux.wait(session, r"FINISHED", timeout=180)
            screen = tmux.wait(session, r"round 2/2", timeout=10).string
            assert "step 16/16" in screen and "100.0 %" in screen
        tmux.keys("second", "Left")  # the samples drawn while nobody watched
        assert "step 8 · epoch 2" in tmux.wait("second", r"round 1/2").string
        tmux.keys("second", "d")
        tmux.wait("second", r"EXITED", timeout=20)
        assert (run.output / "tm.safetensors").is_file()
        wait_until(lambda: not is_alive(trainer), "the trainer to exit")
    except AssertionError as exc:
        events = [e["type"] for _, e in iter_events(run.events)]
        tail = run.log.read_text()[-3000:] if run.log.exists() else ""
        raise AssertionError(f"{exc}\nevents: {events[:5]} ... {events[-8:]}\ntrainer.log:\n{tail}") from None
    finally:
        tmux("kill-server")
        trainer = read_pidfile(run.pidfile)
        if trainer is not None and is_alive(trainer):
            os.kill(trainer.pid, 9)
