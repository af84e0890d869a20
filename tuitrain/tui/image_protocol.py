"""Which picture protocol the review screen draws with, chosen before Textual takes the terminal.

textual-image asks the terminal what it supports with escape-sequence queries
when its modules are imported, and the answers can only be read before Textual's
input thread starts. So the choice is made once, up front, and then fixed.

"auto" means:

- outside tmux (and GNU screen): textual-image's own detection (Sixel, Kitty
  graphics, else half-cells);
- inside tmux: half-cells, unless tmux's ``allow-passthrough`` is on *and* the
  installed textual-image can wrap its output for tmux (0.13 and newer; 0.12,
  the last release for Python 3.11, cannot, and its pictures would never reach
  the outer terminal). With both, textual-image's detection runs through tmux
  and picks Kitty graphics when the outer terminal has them.

Explicit choices (setting, ``--image-protocol``, ``TUITRAIN_IMAGE_PROTOCOL``)
are obeyed and never probe the terminal. Half-cells assume 1:2 cells (two
square pixels per cell), so the same picture comes out on every machine
(snapshot tests rely on that).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tuitrain.settings import IMAGE_PROTOCOLS

ENV_VAR = "TUITRAIN_IMAGE_PROTOCOL"
CONCRETE = ("kitty", "sixel", "halfcell", "unicode")
# textual-image's widget class for each protocol
_WIDGET_CLASS = {"kitty": "TGPImage", "sixel": "SixelImage", "halfcell": "HalfcellImage", "unicode": "UnicodeImage"}
_HALFCELL_CELL = (10, 20)  # pixels per cell assumed for character protocols: square half-cells


@dataclass(frozen=True)
class ProtocolChoice:
    """The protocol in use, what was asked for, and why (shown in the help screen)."""

    protocol: str
    requested: str
    reason: str


def requested_protocol(setting: str, flag: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The command-line flag wins over the environment, which wins over the settings file."""
    env = os.environ if env is None else env
    for value in (flag, env.get(ENV_VAR)):
        if value:
            if value not in IMAGE_PROTOCOLS:
                raise ValueError(f"image protocol must be one of {', '.join(IMAGE_PROTOCOLS)}, got {value!r}")
            return value
    return setting


def textual_image_handles_tmux() -> bool:
    """textual-image 0.13+ wraps its queries and images in tmux's passthrough (it has a _tmux module)."""
    try:
        return importlib.util.find_spec("textual_image._tmux") is not None
    except (ImportError, ValueError):
        return False


def tmux_allows_passthrough(env: Mapping[str, str] | None = None) -> bool:
    """Is tmux's allow-passthrough on for this pane (tmux 3.3+)? False when it cannot be told."""
    env = os.environ if env is None else env
    tmux = shutil.which("tmux")
    if tmux is None:
        return False
    command = [tmux, "show-options", "-Apv"]
    if env.get("TMUX_PANE"):
        command += ["-t", env["TMUX_PANE"]]
    try:
        out = subprocess.run(command + ["allow-passthrough"], capture_output=True, text=True, timeout=2)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and out.stdout.strip().splitlines()[-1:] in (["on"], ["all"])


def choose_protocol(
    requested: str,
    *,
    env: Mapping[str, str],
    is_tty: bool,
    handles_tmux: Callable[[], bool] = textual_image_handles_tmux,
    passthrough: Callable[[], bool] = tmux_allows_passthrough,
    detect: Callable[[], str],
) -> ProtocolChoice:
    """Decide the concrete protocol; `detect` runs textual-image's terminal queries (auto only)."""
    if requested in CONCRETE:
        return ProtocolChoice(requested, requested, "chosen in the settings")
    if not is_tty:
        return ProtocolChoice("halfcell", requested, "not a terminal: half-cells")
    if env.get("TMUX"):
        if not handles_tmux():
            return ProtocolChoice(
                "halfcell", requested, "inside tmux, and this textual-image cannot pass images through it: half-cells"
            )
        if not passthrough():
            return ProtocolChoice("halfcell", requested, "inside tmux with allow-passthrough off: half-cells")
        found = detect()
        return ProtocolChoice(found, requested, f"inside tmux with passthrough on: textual-image found {found}")
    if env.get("STY"):
        return ProtocolChoice("halfcell", requested, "inside GNU screen: half-cells")
    found = detect()
    return ProtocolChoice(found, requested, f"textual-image found {found}")


class _NotATerminal:
    """Stands in for sys.__stdout__ so textual-image's import does not query the terminal."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def _import_renderables(probe: bool) -> Any:
    """Import textual_image.renderable, letting it probe the terminal only when asked to."""
    if probe or "textual_image.renderable" in sys.modules:
        import textual_image.renderable as renderable

        return renderable
    real = sys.__stdout__
    sys.__stdout__ = _NotATerminal(real)  # type: ignore[misc]
    try:
        import textual_image.renderable as renderable
    finally:
        sys.__stdout__ = real  # type: ignore[misc]
    return renderable


def _detect() -> str:
    renderable = _import_renderables(probe=True)
    names = {
        renderable.TGPImage: "kitty",
        renderable.SixelImage: "sixel",
        renderable.HalfcellImage: "halfcell",
        renderable.UnicodeImage: "unicode",
    }
    return names.get(renderable.Image, "halfcell")


def resolve(requested: str, env: Mapping[str, str] | None = None) -> ProtocolChoice:
    """Choose the protocol and get textual-image ready for it (imports, cell size)."""
    env = os.environ if env is None else env
    stdout = sys.__stdout__
    is_tty = bool(stdout and stdout.isatty())
    choice = choose_protocol(requested, env=env, is_tty=is_tty, detect=_detect)
    prepare(choice.protocol)
    return choice


def prepare(protocol: str) -> None:
    """Import textual-image without probing and settle the cell size it will assume.

    Half-cells are drawn by tuitrain's own renderer (tuitrain.tui.review.halfcell),
    so they need no textual-image at all (nor its numpy: a faster start). The
    unicode renderer gets fixed 1:2 cells (no terminal query); pixel protocols
    ask the terminal for the cell size now, before Textual starts.
    """
    if protocol == "halfcell":
        return
    _import_renderables(probe=False)
    from textual_image import _terminal

    if hasattr(_terminal.get_cell_size, "_result"):
        return
    if protocol != "unicode":
        try:
            _terminal.get_cell_size()
            return
        except Exception:  # noqa: S110 - e.g. a terminal that reports 0 columns: assume 1:2 cells
            pass
    _terminal.get_cell_size._result = _terminal.CellSize(*_HALFCELL_CELL)  # type: ignore[attr-defined]


class ProtocolResolver:
    """Runs `resolve` on a thread, so waiting for the terminal's answers (a round trip over
    SSH) overlaps with importing Textual; `result()` must be called before the app runs."""

    def __init__(self, requested: str) -> None:
        self._requested = requested
        self._choice: ProtocolChoice | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="tuitrain-protocol", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._choice = resolve(self._requested)
        except BaseException as error:  # reported by result(), on the main thread
            self._error = error

    def result(self) -> ProtocolChoice:
        self._thread.join()
        if self._error is not None:
            return ProtocolChoice("halfcell", self._requested, f"detection failed ({self._error}): half-cells")
        assert self._choice is not None
        return self._choice


def widget_class(protocol: str) -> type:
    """textual-image's widget class for a concrete protocol (import after `resolve`)."""
    prepare(protocol)
    if protocol == "halfcell":
        # prepare() leaves textual-image alone for half-cells (the review screen draws its own).
        # Importing it now without that would let it query the terminal from inside the running
        # app, whose input thread swallows the answer: the screen would hang. Import it unprobed.
        _import_renderables(probe=False)
        from textual_image import _terminal

        if not hasattr(_terminal.get_cell_size, "_result"):
            _terminal.get_cell_size._result = _terminal.CellSize(*_HALFCELL_CELL)  # type: ignore[attr-defined]
    import textual_image.widget as widgets

    return getattr(widgets, _WIDGET_CLASS.get(protocol, "HalfcellImage"))


def cell_pixels(protocol: str) -> tuple[int, int]:
    """Pixels one terminal cell shows: the size previews are decoded to."""
    if protocol in ("halfcell", "unicode"):
        return (1, 2)
    from textual_image._terminal import get_cell_size

    size = get_cell_size()
    return (size.width, size.height)
