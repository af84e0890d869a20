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


def _closed_by_server(sock: socket.socket, timeout: float = 5.0) -> bool:
    sock.settimeout(timeout)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_a_deeply_nested_line_is_ignored_and_the_client_keeps_working(tmp_path: Path) -> None:
    server = ControlServer(tmp_path / "events.jsonl", tmp_path / "control.sock")
    try:
        client = _connect(tmp_path / "control.sock")
        # Before: json.loads raised RecursionError, which killed this client's reader thread.
        client.sendall(b"[" * 4000 + b"\n" + b'{"cmd": {"cmd": {"cmd": {"cmd": {"cmd": "stop"}}}}}\n' + b'{"cmd": "pause"}\n')
        received: list[str] = []
        _wait(lambda: received.extend(server.poll()) or received == ["pause"])
        client.close()
    finally:
        server.close()


def test_a_line_longer_than_any_command_drops_that_client_without_buffering_it(tmp_path: Path) -> None:
    import threading

    server = ControlServer(tmp_path / "events.jsonl", tmp_path / "control.sock")
    try:
        hog = _connect(tmp_path / "control.sock")
        _wait(lambda: len(server._clients) == 1)

        def flood() -> None:
            try:
                hog.sendall(b"x" * 10_000_000)  # 10 MB, no newline
            except OSError:
                pass  # the server hung up, as it should

        sender = threading.Thread(target=flood, daemon=True)
        sender.start()
        assert _closed_by_server(hog), "the server kept reading a 10 MB line"
        _wait(lambda: not server._clients)
        send_command(tmp_path / "control.sock", "save")  # and it still serves everyone else
        _wait(lambda: server.poll() == ["save"])
        hog.close()
    finally:
        server.close()


def test_connections_beyond_the_cap_are_closed_and_threads_stay_bounded(tmp_path: Path) -> None:
    import threading

    from tuitrain.runs.control import MAX_CLIENTS

    server = ControlServer(tmp_path / "events.jsonl", tmp_path / "control.sock")
    threads_before = threading.active_count()
    clients = []
    try:
        for _ in range(200):
            for attempt in range(200):  # a full listen backlog says EAGAIN until the server accepts
                try:
                    clients.append(_connect(tmp_path / "control.sock"))
                    break
                except BlockingIOError:
                    time.sleep(0.01)
        _wait(lambda: len(server._clients) == MAX_CLIENTS)
        time.sleep(0.3)
        assert len(server._clients) == MAX_CLIENTS
        assert threading.active_count() - threads_before <= 2 * MAX_CLIENTS + 1
        assert _closed_by_server(clients[-1], timeout=2)  # a connection over the cap is told at once
        assert not _closed_by_server(clients[0], timeout=0.2)  # the first ones still follow the run
        server.emit("step", step=1, loss=0.25)
        assert json.loads(clients[0].makefile("rb").readline())["loss"] == 0.25
    finally:
        for sock in clients:
            sock.close()
        server.close()
