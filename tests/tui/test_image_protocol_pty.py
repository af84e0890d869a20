"""Half-cell pictures never make textual-image question the terminal.

A terminal query sent from inside the running app is answered into Textual's input
thread, never to textual-image, so the screen hangs (seen in tmux, depending on
timing). This checks it deterministically: under a pseudo-terminal nobody answers,
resolving the half-cell widget class must write nothing to the terminal.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time


def test_halfcell_widget_class_sends_no_terminal_query() -> None:
    master, slave = pty.openpty()
    code = (
        "from tuitrain.tui.image_protocol import widget_class\n"
        "cls = widget_class('halfcell')\n"
        "import sys; sys.stderr.write('RESOLVED ' + cls.__name__ + '\\n')\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=slave, stdout=slave, stderr=subprocess.PIPE)
    os.close(slave)
    written = b""
    deadline = time.monotonic() + 30
    while proc.poll() is None and time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                written += os.read(master, 4096)
            except OSError:
                break
    if proc.poll() is None:
        proc.kill()
    err = proc.stderr.read().decode() if proc.stderr else ""
    os.close(master)
    assert "RESOLVED HalfcellImage" in err, (err, written)
    assert b"\x1b" not in written, f"textual-image queried the terminal: {written!r}"
