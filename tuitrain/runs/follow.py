"""Follow a run: replay its whole history, then keep up with it live.

Design: the file is followed, the socket only wakes us up.

The trainer appends each event to events.jsonl *before* it sends the same line
over control.sock (ControlServer.emit). The follower never parses what the
socket carries: it reads events.jsonl from a byte offset (tail -f style) and
uses the socket only as a low-latency "something was appended" signal. So:

- nothing is lost or seen twice around the switch from replay to live, because
  there is no switch: replay and live are the same read, from the same offset,
  in the file's (authoritative) order; an event that reaches the socket is
  already in the file;
- a socket that is slow, dropped by the trainer (its per-client queue is
  bounded), refused (a stale socket file) or absent (a workspace on another
  machine's disk) costs latency only: the file is still read every
  `poll_interval` seconds;
- no de-duplication by "time" is needed (two events may share a timestamp).

Each read first checks whether the trainer is alive (PID file + process start
time) and only then reads the file, so "dead and the file has no `finished`"
reliably means the trainer died without finishing: a trainer that finishes
writes `finished` before it exits. Socket EOF triggers an immediate check.

A torn last line is left for the next read; a file replaced or truncated (a new
inode, or shorter than the offset) is read again from the start with `reset`.
trainer.log is followed the same way, starting from its last `log_tail_bytes`.
"""

from __future__ import annotations

import json
import os
import re
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuitrain.runs.control import bind_path
from tuitrain.runs.events import decode_line
from tuitrain.runs.layout import RunDir
from tuitrain.runs.pidfile import is_alive, read_pidfile

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


@dataclass
class FollowBatch:
    """What was new in the run since the previous batch."""

    events: list[dict[str, Any]] = field(default_factory=list)
    log_lines: list[str] = field(default_factory=list)
    alive: bool = False  # the trainer process is alive (checked before the file was read)
    pid: int | None = None  # the live trainer's process id
    reset: bool = False  # the event log was replaced or truncated: forget what came before
    replay_done: bool = False  # the history read on attach has all been delivered (this batch is empty)


def live_trainer(run: RunDir) -> int | None:
    """The live trainer's process id, or None when no trainer is alive."""
    proc = read_pidfile(run.pidfile)
    return proc.pid if proc is not None and is_alive(proc) else None


def decode_chunk(data: bytes) -> list[dict[str, Any]]:
    """The events in `data`, a run of complete lines.

    One json.loads over the whole chunk is about twice as fast as one per line
    (replay of 100k events in well under a second); a chunk with a bad line
    (a torn write after a crash) falls back to line by line and skips it.
    """
    body = data.strip(b"\n")
    if not body:
        return []
    try:
        items = json.loads(b"[" + body.replace(b"\n", b",") + b"]")
    except (ValueError, UnicodeDecodeError):
        events = (decode_line(line) for line in body.split(b"\n"))
        return [e for e in events if e is not None]
    return [e for e in items if isinstance(e, dict) and isinstance(e.get("type"), str)]


def clean_log_line(raw: bytes) -> str:
    """One trainer.log line as shown: progress bars' carriage returns keep their last state."""
    text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
    parts = [p for p in text.split("\r") if p.strip()]
    return _ANSI.sub("", parts[-1] if parts else "").rstrip()


class _Tail:
    """A byte offset into a growing file that notices replacement and truncation."""

    def __init__(self, path: Path, start_from_end: int | None = None) -> None:
        self.path = path
        self.pos = 0
        self.ident: tuple[int, int] | None = None
        self.start_from_end = start_from_end  # first read: only the last N bytes (logs)

    def read(self, limit: int) -> tuple[bytes, bool]:
        """(complete new lines, up to `limit` bytes or to the end of a longer line; reset?)."""
        try:
            fh = open(self.path, "rb")
        except FileNotFoundError:
            reset = self.pos > 0
            self.pos, self.ident = 0, None
            return b"", reset
        with fh:
            st = os.fstat(fh.fileno())
            ident = (st.st_dev, st.st_ino)
            reset = False
            skip_partial = False
            if self.ident is None:
                if self.start_from_end is not None and st.st_size > self.start_from_end:
                    self.pos = st.st_size - self.start_from_end
                    skip_partial = True
            elif ident != self.ident or st.st_size < self.pos:
                self.pos, reset = 0, True
            self.ident = ident
            if st.st_size <= self.pos:
                return b"", reset
            fh.seek(self.pos)
            data = fh.read(limit)
            while b"\n" not in data:  # a line longer than `limit`, or a torn last line
                more = fh.read(limit)
                if not more:
                    break
                data += more
            end = data.rfind(b"\n") + 1
            if skip_partial:
                start = data.find(b"\n") + 1
                self.pos += start
                data, end = data[start:], end - start
            self.pos += max(end, 0)
            return data[: max(end, 0)], reset


class RunFollower:
    """Replays a run's events and log, then follows them live on a thread.

    `sink` is called on the follower's thread with each FollowBatch: first the
    replay (several batches for a long history), then an empty batch with
    `replay_done`, then whenever something changed (new events, new log lines,
    the trainer's liveness).
    """

    def __init__(
        self,
        run: RunDir,
        sink: Callable[[FollowBatch], None],
        *,
        poll_interval: float = 0.5,
        coalesce: float = 0.05,
        log_tail_bytes: int = 32 * 1024,
        chunk_bytes: int = 4 << 20,
    ) -> None:
        self.run = run
        self.sink = sink
        self.poll_interval = poll_interval
        self.coalesce = coalesce  # after a wake-up, wait this long so bursts are read as one batch
        self.chunk_bytes = chunk_bytes
        self._events = _Tail(run.events)
        self._log = _Tail(run.log, start_from_end=log_tail_bytes)
        self._pid: int | None = -1  # -1: not looked yet
        self._sock: socket.socket | None = None
        self._last_connect = -1e9
        self._wake_r, self._wake_w = socket.socketpair()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- synchronous reading (the thread uses it; so can tests and scripts) --------------------
    def read(self, replay: bool = False) -> Iterator[FollowBatch]:
        """Everything new since the last read, in batches of at most `chunk_bytes` of events
        (`replay`: yield the first batch even when empty: the receiver learns the liveness)."""
        pid = live_trainer(self.run)  # before reading: see the module docstring
        alive = pid is not None
        log_data, log_reset = self._log.read(1 << 20)
        lines = [clean_log_line(raw) for raw in log_data.split(b"\n")]  # not splitlines: it splits at \r
        lines = [line for line in lines if line][-500:]
        first = True
        while True:
            data, reset = self._events.read(self.chunk_bytes)
            if not first and not data and not reset:
                return
            batch = FollowBatch(decode_chunk(data), lines if first else [], alive, pid, reset)
            changed = first and (replay or pid != self._pid or bool(lines) or log_reset)
            if batch.events or batch.reset or changed:
                yield batch
            self._pid = pid
            first = False
            if not data:
                return

    # -- the thread -----------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=f"follow-{self.run.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        if self._sock is not None:
            self._drain_socket()  # closing with unread data would reset the trainer's side (ECONNRESET)
        self._close_socket()
        for s in (self._wake_r, self._wake_w):
            s.close()

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def _loop(self) -> None:
        try:
            self._deliver(replay=True)
            self.sink(FollowBatch(alive=self._pid is not None, pid=self._pid, replay_done=True))
            while not self._stop.is_set():
                if self._sock is None and time.monotonic() - self._last_connect >= self.poll_interval:
                    self._connect()
                watch = [self._wake_r] + ([self._sock] if self._sock is not None else [])
                try:
                    ready, _, _ = select.select(watch, [], [], self.poll_interval)
                except (OSError, ValueError):
                    self._close_socket()
                    continue
                if self._stop.is_set():
                    return
                if self._sock is not None and self._sock in ready:
                    self._drain_socket()
                self._deliver()
                self._stop.wait(self.coalesce)
        except Exception:  # never let a follower bug take the app down; the UI sees it stop updating
            import traceback

            traceback.print_exc()

    def _deliver(self, replay: bool = False) -> None:
        for batch in self.read(replay=replay):
            if self._stop.is_set():
                return
            self.sink(batch)

    def _connect(self) -> None:
        self._last_connect = time.monotonic()
        if not self.run.socket.exists():
            return
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        target, fd = bind_path(self.run.socket)
        try:
            sock.settimeout(1.0)
            sock.connect(target)
            sock.setblocking(False)
            self._sock = sock
        except OSError:  # a socket file left by a dead trainer, or one just going away
            sock.close()
        finally:
            if fd is not None:
                os.close(fd)

    def _drain_socket(self) -> None:
        """Discard what the socket carries (the file has it); EOF means the trainer went away."""
        assert self._sock is not None
        try:
            while True:
                data = self._sock.recv(1 << 16)
                if not data:
                    self._close_socket()
                    return
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close_socket()

    def _close_socket(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None
