"""The run's pipe: events reach the file and every client; commands reach the trainer."""

from __future__ import annotations

import json
import socket
import stat
import time
from pathlib import Path

import pytest

from tuitrain.runs.control import ControlServer, bind_path, send_command
from tuitrain.runs.events import iter_events


def _connect(path: Path) -> socket.socket:
    target, fd = bind_path(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.connect(target)
    if fd is not None:
        import os

        os.close(fd)
    return sock


def _wait(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.mark.parametrize("deep", [False, True])
def test_events_reach_file_and_two_clients_commands_come_back(tmp_path: Path, deep: bool) -> None:
    run = tmp_path / ("x" * 120 if deep else "r")  # > AF_UNIX's path limit when deep
    run.mkdir()
    server = ControlServer(run / "events.jsonl", run / "control.sock")
    try:
        assert stat.S_IMODE((run / "control.sock").stat().st_mode) == 0o600
        a, b = _connect(run / "control.sock"), _connect(run / "control.sock")
        _wait(lambda: len(server._clients) == 2)
        server.emit("step", step=1, loss=0.5)
        for client in (a, b):
            line = client.makefile("rb").readline()
            assert json.loads(line)["loss"] == 0.5
        assert [e["type"] for _, e in iter_events(run / "events.jsonl")] == ["step"]
        send_command(run / "control.sock", "pause")
        a.sendall(b'{"cmd": "stop"}\n{"cmd": "format_disk"}\nnot json\n')
        received: list[str] = []
        # two connections: no order between them, but each arrives once; junk is ignored
        _wait(lambda: received.extend(server.poll()) or sorted(received) == ["pause", "stop"])
        with pytest.raises(ValueError):
            send_command(run / "control.sock", "format_disk")
        a.close()
        b.close()
    finally:
        server.close()
    assert not (run / "control.sock").exists()


def test_a_client_that_never_reads_is_dropped_not_waited_for(tmp_path: Path) -> None:
    server = ControlServer(tmp_path / "events.jsonl", tmp_path / "control.sock")
    try:
        lazy = _connect(tmp_path / "control.sock")
        _wait(lambda: len(server._clients) == 1)
        t0 = time.monotonic()
        for i in range(30_000):
            server.emit("step", step=i, loss=0.1, message="x" * 100)
        assert time.monotonic() - t0 < 30  # never blocked on the socket
        _wait(lambda: len(server._clients) == 0)
        assert sum(1 for _ in iter_events(tmp_path / "events.jsonl")) == 30_000
        lazy.close()
    finally:
        server.close()


def test_stale_socket_of_a_dead_trainer_is_replaced(tmp_path: Path) -> None:
    (tmp_path / "control.sock").write_text("left over")
    server = ControlServer(tmp_path / "events.jsonl", tmp_path / "control.sock")
    try:
        send_command(tmp_path / "control.sock", "save")
        received: list[str] = []
        _wait(lambda: received.extend(server.poll()) or received == ["save"])
    finally:
        server.close()


def test_a_client_reset_mid_stream_leaves_no_traceback(tmp_path: Path, capsys) -> None:
    import threading

    server = ControlServer(tmp_path / "events.jsonl", tmp_path / "control.sock")
    errors: list[BaseException] = []
    previous = threading.excepthook
    threading.excepthook = lambda args: errors.append(args.exc_value)
    try:
        client = _connect(tmp_path / "control.sock")
        _wait(lambda: len(server._clients) == 1)
        for i in range(200):
            server.emit("step", step=i)
        time.sleep(0.2)  # the events now sit unread in the client's receive buffer
        client.sendall(b'{"cmd": "pa')  # half a command, then gone without reading: the server's
        client.close()  # reader gets ECONNRESET, as when a TUI is killed mid-stream
        for i in range(200):
            server.emit("step", step=i)
        _wait(lambda: len(server._clients) == 0)
    finally:
        threading.excepthook = previous
        server.close()
    assert errors == []
