"""The trainer's side of the run's pipe: events out, commands in.

Every event is appended to events.jsonl (the history a late TUI replays) and
sent to each connected client over an owner-only Unix socket in the run
directory. Clients send commands as JSON lines: {"cmd": "pause"}. Nothing listens
on the network. A client too slow to keep up is dropped (it replays from the file
when it reconnects) so it can never stall training.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import threading
from pathlib import Path
from typing import Any

from tuitrain.runs.events import append_event, encode_event, make_event

COMMANDS = ("pause", "resume", "stop", "save", "sample", "backup")
_CLIENT_QUEUE = 10_000  # events buffered per client before it is dropped
_AF_UNIX_MAX = 100
# Limits against the owner's own mistakes (a runaway script, a stuck loop of attaches): a
# command is one short flat JSON object, and a handful of dashboards follow a run at once.
MAX_LINE = 4096  # bytes in one command line; a longer line drops that client
MAX_NESTING = 4  # '{'/'[' in one line; deeper lines are ignored before json.loads could recurse
MAX_CLIENTS = 32  # connections at once (two threads each); more are closed at once


def bind_path(path: Path) -> tuple[str, int | None]:
    """A path bind()/connect() accept: AF_UNIX paths are limited to ~107 bytes.

    A longer one is reached through /proc/self/fd/<fd of its folder> (Linux).
    Returns (path, folder fd to close afterwards or None).
    """
    text = str(path)
    if len(text.encode()) <= _AF_UNIX_MAX:
        return text, None
    fd = os.open(path.parent, os.O_RDONLY)
    return f"/proc/self/fd/{fd}/{path.name}", fd


class _Client:
    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.outbox: queue.Queue[bytes | None] = queue.Queue(_CLIENT_QUEUE)
        self.alive = True

    def send(self, data: bytes) -> None:
        try:
            self.outbox.put_nowait(data)
        except queue.Full:
            self.close()

    def close(self) -> None:
        if self.alive:
            self.alive = False
            try:
                self.outbox.put_nowait(None)
            except queue.Full:
                pass
            try:
                self.conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class ControlServer:
    """Emits events (file + socket) and collects commands for the training loop."""

    def __init__(self, events_path: Path, socket_path: Path | None) -> None:
        self.events_path = events_path
        self.socket_path = socket_path
        self.commands: queue.Queue[dict[str, Any]] = queue.Queue()
        self._clients: list[_Client] = []
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        if socket_path is not None:
            self._listen(socket_path)

    def _listen(self, path: Path) -> None:
        path.unlink(missing_ok=True)  # a socket left by a dead trainer
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        target, fd = bind_path(path)
        old_umask = os.umask(0o177)  # owner-only from the first instant
        try:
            sock.bind(target)
        finally:
            os.umask(old_umask)
            if fd is not None:
                os.close(fd)
        os.chmod(path, 0o600)
        sock.listen(8)
        self._sock = sock
        threading.Thread(target=self._accept, name="control-accept", daemon=True).start()

    def _accept(self) -> None:
        assert self._sock is not None
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                full = len(self._clients) >= MAX_CLIENTS
                client = _Client(conn)
                if not full:
                    self._clients.append(client)
            if full:
                try:
                    conn.close()
                except OSError:
                    pass
                continue
            threading.Thread(target=self._read, args=(client,), daemon=True).start()
            threading.Thread(target=self._write, args=(client,), daemon=True).start()

    def _read(self, client: _Client) -> None:
        try:
            with client.conn.makefile("rb") as reader:
                while client.alive:
                    line = reader.readline(MAX_LINE + 1)
                    if not line or (len(line) > MAX_LINE and not line.endswith(b"\n")):
                        break  # closed, or a line no command needs: never buffer it whole
                    message = parse_command(line)
                    if message is not None:
                        self.commands.put(message)
        except OSError:
            pass  # a client that vanished mid-line (a killed TUI) is not the trainer's problem
        client.close()

    def _write(self, client: _Client) -> None:
        while True:
            data = client.outbox.get()
            if data is None:
                break
            try:
                client.conn.sendall(data)
            except OSError:
                break
        client.close()
        with self._lock:
            if client in self._clients:
                self._clients.remove(client)
        try:
            client.conn.close()
        except OSError:
            pass

    def emit(self, type_: str, **fields: Any) -> dict[str, Any]:
        event = make_event(type_, **fields)
        append_event(self.events_path, event)
        data = encode_event(event)
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            client.send(data)
        return event

    def poll(self) -> list[str]:
        """Commands received since the last poll, oldest first."""
        out = []
        while True:
            try:
                out.append(self.commands.get_nowait()["cmd"])
            except queue.Empty:
                return out

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None
                if self.socket_path is not None:
                    self.socket_path.unlink(missing_ok=True)
        with self._lock:
            for client in self._clients:
                client.close()


def parse_command(line: bytes) -> dict[str, Any] | None:
    """A command line as {"cmd": ...}, or None for anything else (junk, unknown, too deeply nested)."""
    if line.count(b"{") + line.count(b"[") > MAX_NESTING:
        return None
    try:
        message = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if isinstance(message, dict) and message.get("cmd") in COMMANDS:
        return message
    return None


def send_command(socket_path: Path, cmd: str, timeout: float = 2.0) -> None:
    """Send one command to a live trainer (used by the CLI and the TUI)."""
    if cmd not in COMMANDS:
        raise ValueError(f"unknown command {cmd!r}")
    target, fd = bind_path(socket_path)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(target)
            sock.sendall(json.dumps({"cmd": cmd}).encode() + b"\n")
    finally:
        if fd is not None:
            os.close(fd)
