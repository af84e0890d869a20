"""How the picture protocol is chosen, and what a forced choice does to textual-image."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios

import pytest

from tuitrain.tui.image_protocol import ENV_VAR, choose_protocol, requested_protocol


def choose(requested: str = "auto", *, env: dict[str, str] | None = None, tty: bool = True, new: bool = False,
           passthrough: bool = False, found: str = "kitty") -> tuple[str, str]:
    calls: list[str] = []

    def detect() -> str:
        calls.append("detect")
        return found

    choice = choose_protocol(
        requested, env=env or {}, is_tty=tty, handles_tmux=lambda: new, passthrough=lambda: passthrough, detect=detect
    )
    return choice.protocol, ("probed" if calls else "not probed")


def test_outside_tmux_auto_asks_textual_image() -> None:
    assert choose(found="sixel") == ("sixel", "probed")
    assert choose(found="halfcell") == ("halfcell", "probed")


def test_inside_tmux_auto_still_shows_a_picture() -> None:
    tmux = {"TMUX": "/tmp/tmux-0/default,1,0"}
    # textual-image 0.12 (Python 3.11) cannot pass images through tmux: half-cells, no probing
    assert choose(env=tmux, new=False, passthrough=True) == ("halfcell", "not probed")
    # a newer textual-image, but allow-passthrough is off: half-cells
    assert choose(env=tmux, new=True, passthrough=False) == ("halfcell", "not probed")
    # both: textual-image's own detection runs through tmux and finds the outer terminal's kitty graphics
    assert choose(env=tmux, new=True, passthrough=True, found="kitty") == ("kitty", "probed")


def test_explicit_choices_never_probe() -> None:
    for protocol in ("kitty", "sixel", "halfcell", "unicode"):
        assert choose(protocol, env={"TMUX": "x"}) == (protocol, "not probed")
    assert choose(tty=False) == ("halfcell", "not probed")
    assert choose(env={"STY": "1.pts-0"}) == ("halfcell", "not probed")


def test_flag_beats_environment_beats_settings() -> None:
    assert requested_protocol("kitty", None, {}) == "kitty"
    assert requested_protocol("kitty", None, {ENV_VAR: "sixel"}) == "sixel"
    assert requested_protocol("kitty", "unicode", {ENV_VAR: "sixel"}) == "unicode"
    with pytest.raises(ValueError, match="got 'iterm'"):
        requested_protocol("auto", None, {ENV_VAR: "iterm"})


PROBE = """
import sys
from tuitrain.tui.image_protocol import resolve
choice = resolve(sys.argv[1])
cell = None
if "textual_image._terminal" in sys.modules:
    from textual_image._terminal import get_cell_size
    cell = tuple(get_cell_size())
print(choice.protocol, cell, "numpy" in sys.modules, file=sys.stderr)
"""


def resolve_on_a_terminal(requested: str) -> tuple[str, bytes]:
    """resolve() in a child whose stdout is a pseudo-terminal; (its report, what it wrote to the terminal)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "STY", "TUITRAIN_IMAGE_PROTOCOL")}
    child = subprocess.Popen(
        [sys.executable, "-c", PROBE, requested], stdin=slave, stdout=slave, stderr=subprocess.PIPE, env=env
    )
    os.close(slave)
    _, err = child.communicate(timeout=60)
    written = b""
    while select.select([master], [], [], 0)[0]:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        written += chunk
    os.close(master)
    assert child.returncode == 0, err
    return err.decode().strip().splitlines()[-1], written  # its own report is the last line


def test_forced_protocols_never_query_the_terminal() -> None:
    report, written = resolve_on_a_terminal("halfcell")
    assert report == "halfcell None False"  # not even textual-image (or its numpy) is imported
    assert b"\x1b" not in written
    report, written = resolve_on_a_terminal("unicode")
    assert report == "unicode (10, 20) True"  # fixed 1:2 cells, not asked of the terminal
    assert b"\x1b" not in written
    report, written = resolve_on_a_terminal("auto")  # outside tmux: textual-image asks the terminal
    assert b"\x1b[c" in written  # (nothing answers here, so it falls back to half-cells)
    assert report.startswith("halfcell")
