"""Shared fixtures: every test runs offline, in its own workspace and config dirs."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tmux import Tmux

REPO = Path(__file__).resolve().parents[1]

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
# One torch thread, here (torch reads this at import) and in every trainer process a test starts
# (`tuitrain train`, --detach, the TUI's): tiny models gain nothing from more threads, and on a
# busy 2-core machine spinning threads made a tiny step take seconds instead of ~0.1 s.
os.environ["OMP_NUM_THREADS"] = "1"


@pytest.fixture(autouse=True)
def isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private workspace, config and cache folder, so no test sees the user's files."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("TUITRAIN_WORKSPACE", str(home / "runs"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    return home


@pytest.fixture(autouse=True)
def pilot_waits_for_the_first_screen(monkeypatch: pytest.MonkeyPatch) -> None:
    """run_test hands over a pilot once the app's first screen is mounted, as it did when apps pushed it.

    The apps open on their default screen (tuitrain/tui/base_app.py), which Textual composes after the
    app reports ready: Pilot's wait for pending messages then saw a screen with no children yet, and
    tests looked for rows the editor had not built. Textual is pinned, so its private wait is patched here.
    """
    if "textual.app" not in sys.modules:
        return  # a test that never starts an app
    import asyncio

    from textual.pilot import Pilot

    original = Pilot._wait_for_screen

    async def wait_for_screen(self: Pilot[object], timeout: float = 30.0) -> bool:
        try:
            screen = self.app.screen
        except Exception:
            return await original(self, timeout)
        await asyncio.wait_for(screen._mounted_event.wait(), timeout)
        return await original(self, timeout)

    monkeypatch.setattr(Pilot, "_wait_for_screen", wait_for_screen)


@pytest.fixture
def workspace(isolated_env: Path) -> Path:
    return isolated_env / "runs"


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`tuitrain ARGS` as a real process, the way a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "tuitrain", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    """A private tmux server for this test (tests/tmux.py), killed after it."""
    session = Tmux(tmp_path / "tmux.sock", "tuitrain-test")
    try:
        yield session
    finally:
        session("kill-server")


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The umask most boxes have (022): what made run folders world-readable before they were 0700."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)
