"""A pseudo-terminal for the TUI benchmarks: run the app, send keys, time what it writes.

Not a benchmark itself; bench/tui_startup.py and bench/tui_review.py use it.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Callable

DA1_QUERY = b"\x1b[c"
XTERM_DA1 = b"\x1b[?62;22c"  # what an xterm without Sixel answers: a VT220 with ANSI colour


def _own_terminal() -> None:
    """In the child: a session of its own with the pty as its controlling terminal, as a login shell has.
    Then a bench that dies hangs the app up (SIGHUP) as a closed terminal would; without it, an app
    left behind read EOF forever at 100 % CPU and slowed every later measurement."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """The app in a pseudo-terminal; a thread keeps every chunk it writes, with its arrival time.

    With answer_da1, the device-attributes query is answered like xterm does (no
    Sixel); every other query (Kitty graphics, cell size) goes unanswered, as in
    most terminals, so those wait for their time-outs.
    """

    def __init__(
        self, command: list[str], size: tuple[int, int], env: dict[str, str], *, answer_da1: bool = False
    ) -> None:
        self.answer_da1 = answer_da1
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
        env = {k: v for k, v in env.items() if k not in ("COLUMNS", "LINES")}
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            command, stdin=slave, stdout=slave, stderr=slave, env=env, preexec_fn=_own_terminal
        )
        os.close(slave)
        self.chunks: list[tuple[float, bytes]] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            ready, _, _ = select.select([self.master], [], [], 0.5)
            if not ready:
                if self.process.poll() is not None:
                    return
                continue
            try:
                data = os.read(self.master, 1 << 16)
            except OSError:
                return
            if not data:
                return
            if self.answer_da1 and DA1_QUERY in data:
                os.write(self.master, XTERM_DA1)
            with self._lock:
                self.chunks.append((time.perf_counter(), data))

    def send(self, key: bytes) -> float:
        sent = time.perf_counter()
        os.write(self.master, key)
        return sent

    def wait_for(self, matcher: Callable[[bytes], bool], since: float, timeout: float = 10.0) -> float | None:
        """Arrival time of the chunk with which the output since `since` satisfies matcher.

        matcher is fed each new chunk once, in order (it keeps its own state), so
        waiting costs the app's CPU nothing much: both share two cores.
        """
        deadline = time.perf_counter() + timeout
        seen = 0
        while time.perf_counter() < deadline:
            with self._lock:
                fresh = self.chunks[seen:]
                seen = len(self.chunks)
            for arrived, data in fresh:
                if arrived >= since and matcher(data):
                    return arrived
            time.sleep(0.002)
        return None

    def output_since(self, since: float) -> bytes:
        """Every byte the app wrote from `since` on (for a report when an expected text never came)."""
        with self._lock:
            return b"".join(data for arrived, data in self.chunks if arrived >= since)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self.master)


def contains(*texts: str) -> Callable[[bytes], bool]:
    """A matcher: all texts have arrived (a text may straddle two chunks)."""
    wanted = [text.encode() for text in texts]
    found: set[bytes] = set()
    tail = b""

    def feed(data: bytes) -> bool:
        nonlocal tail
        window = tail + data
        found.update(text for text in wanted if text in window)
        tail = window[-max(len(text) for text in wanted) :]
        return len(found) == len(wanted)

    return feed
