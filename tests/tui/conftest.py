"""Fixtures for the TUI tests: a small generated dataset, and an app that waits for its pictures.

Every test forces the half-cell protocol (no terminal probing, same picture on
every machine) and gets its own config, cache and workspace folders from the
root conftest.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image
from textual import events
from textual.app import App
from textual.keys import _character_to_key
from textual.pilot import Pilot

from tuitrain.tui.app import TuitrainApp
from tuitrain.tui.image_protocol import ProtocolChoice
from tuitrain.tui.review.screen import ReviewScreen
from tuitrain.tui.review.source import ReviewSource

HALFCELL = ProtocolChoice("halfcell", "halfcell", "forced by the tests")


@pytest.fixture(autouse=True)
def _halfcell(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUITRAIN_IMAGE_PROTOCOL", "halfcell")


def picture(size: tuple[int, int], seed: int) -> Image.Image:
    """A smooth random picture, different per seed (cheap, and distinct for duplicate checks)."""
    rng = random.Random(seed)
    small = Image.new("RGB", (4, 4))
    small.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(16)])
    return small.resize(size, Image.Resampling.BILINEAR)


def make_dataset(folder: Path, *, fmt: str = "BMP") -> Path:
    """Six files: a, b (captioned), broken (not an image), c (too small), d (a copy of a), e (no caption).

    BMP by default: its bytes do not depend on the codec version, so sizes shown
    in snapshots stay put.
    """
    folder.mkdir(parents=True, exist_ok=True)
    ext = ".bmp" if fmt == "BMP" else ".jpg"
    picture((96, 64), 1).save(folder / f"a{ext}", fmt)
    (folder / "a.txt").write_text("a red fox in the snow\n")
    picture((64, 96), 2).save(folder / f"b{ext}", fmt)
    (folder / "b.txt").write_text("blue sky, clouds\n")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    picture((40, 28), 3).save(folder / f"c{ext}", fmt)
    (folder / "c.txt").write_text("tiny thumbnail\n")
    (folder / f"d{ext}").write_bytes((folder / f"a{ext}").read_bytes())
    (folder / "d.txt").write_text("the same fox again\n")
    picture((80, 80), 5).save(folder / f"e{ext}", fmt)
    return folder


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return make_dataset(tmp_path / "faery-set")


def review_app(folder: Path, workspace: Path | None = None, **source: object) -> TuitrainApp:
    """The app as `tuitrain cull FOLDER --resolution 64` starts it (64: so c is the one too small)."""
    options = {"resolution": 64, **source}
    return TuitrainApp(
        workspace or folder.parent / "runs",
        review=ReviewSource.from_folder(folder, **options),  # type: ignore[arg-type]
        image_protocol=HALFCELL,
    )


async def wait_until(pilot: Pilot[object], check: Callable[[], bool], timeout: float = 15.0) -> None:
    """Let the app run until check() holds (pictures and reports arrive from threads)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {check.__doc__ or check}")
        await pilot.pause(0.02)


def shown(screen: ReviewScreen) -> str | None:
    """Name of the file whose picture is on screen (None while decoding or for a message)."""
    result = screen.last_result
    preview_key = screen.query_one("#preview").shown_key  # type: ignore[attr-defined]
    if result is None or preview_key is None or result.request.key != preview_key:
        return None
    return result.request.path.name


async def settled(pilot: Pilot[object], name: str | None = None) -> ReviewScreen:
    """Wait for the review screen to have scanned and to show `name` (or any picture)."""
    screen = pilot.app.screen
    assert isinstance(screen, ReviewScreen)

    def ready() -> bool:
        """the picture on screen"""
        if not screen.ready:
            return False
        current = screen.model.current
        if current is not None and current.info is None:
            return name is None or current.name == name
        return shown(screen) is not None and (name is None or shown(screen) == name)

    await wait_until(pilot, ready)
    return screen


async def full_report(pilot: Pilot[object], screen: ReviewScreen) -> None:
    def done() -> bool:
        """the full pre-flight report"""
        report = screen.model.report
        return screen.model.report_is_current and report is not None and bool(report.settings.get("full_check"))

    await wait_until(pilot, done)


def tuitrain(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """`tuitrain ARGS` as a real process, with what the user types on stdin."""
    return subprocess.run(
        [sys.executable, "-m", "tuitrain", *args], input=stdin, capture_output=True, text=True, timeout=120
    )


def burst(app: App[object], *keys: str) -> None:
    """Keys as a terminal delivers a burst: all queued before the first is handled.

    Pilot.press waits after every key, so it never shows what happens to keys read in one go
    (over SSH, or from tmux send-keys with several keys).
    """
    for key in keys:
        character = key if len(key) == 1 else {"space": " ", "cent_sign": "¢", "pound_sign": "£"}.get(key)
        name = _character_to_key(key) if len(key) == 1 and not key.isalnum() else key
        app.post_message(events.Key(name, character))


def notifications(app: TuitrainApp) -> list[str]:
    """The messages of the toasts shown so far (Textual keeps them on the app)."""
    return [notification.message for notification in app._notifications]  # noqa: SLF001
