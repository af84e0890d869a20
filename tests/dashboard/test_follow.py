"""The follower: replay then live with nothing lost or doubled, woken by the socket, robust to bad files."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.dashboard.conftest import wait_until
from tuitrain.runs.control import ControlServer
from tuitrain.runs.events import encode_event, make_event
from tuitrain.runs.follow import FollowBatch, RunFollower, clean_log_line, decode_chunk
from tuitrain.runs.layout import RunDir
from tuitrain.runs.pidfile import write_pidfile


class Collector:
    def __init__(self) -> None:
        self.batches: list[FollowBatch] = []
        self.lock = threading.Lock()

    def __call__(self, batch: FollowBatch) -> None:
        with self.lock:
            self.batches.append(batch)

    def events(self) -> list[dict]:
        with self.lock:
            return [e for b in self.batches for e in b.events]


@pytest.mark.parametrize("head_start", [0, 300, 2000])
def test_replay_then_live_loses_and_doubles_nothing(tmp_path: Path, head_start: int) -> None:
    """A trainer writing as fast as it can while the follower attaches: every event once, in order."""
    run = RunDir(tmp_path / "r")
    run.create_folders()
    server = ControlServer(run.events, run.socket)
    total = 4000
    written = threading.Event()

    def trainer() -> None:
        for seq in range(total):
            server.emit("step", step=seq, loss=0.1)
            if seq == head_start:
                written.set()
        written.set()

    writer = threading.Thread(target=trainer)
    writer.start()
    written.wait(10)
    got = Collector()
    follower = RunFollower(run, got, poll_interval=0.2, coalesce=0.001, chunk_bytes=4096)  # small chunks: many switches
    follower.start()
    try:
        writer.join()
        wait_until(lambda: len(got.events()) >= total, "every event")
        time.sleep(0.3)  # anything doubled would arrive now
        assert [e["step"] for e in got.events()] == list(range(total))
        assert any(b.replay_done for b in got.batches)
    finally:
        follower.stop()
        server.close()


def test_the_socket_wakes_the_follower_long_before_the_poll(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "r")
    run.create_folders()
    server = ControlServer(run.events, run.socket)
    got = Collector()
    follower = RunFollower(run, got, poll_interval=5.0)
    follower.start()
    try:
        wait_until(lambda: follower.connected and any(b.replay_done for b in got.batches), "the connection")
        wait_until(lambda: len(server._clients) == 1, "the trainer to accept it")  # accepted on its own thread
        sent = time.monotonic()
        server.emit("step", step=1, loss=0.5)
        wait_until(lambda: got.events(), "the event", timeout=4)
        assert time.monotonic() - sent < 1.0  # the poll would have taken 5 s
    finally:
        follower.stop()
        server.close()


def test_without_a_socket_the_file_is_polled(tmp_path: Path) -> None:
    """A run whose socket cannot be reached (e.g. another machine's disk) is still followed."""
    run = RunDir(tmp_path / "r")
    run.create_folders()
    server = ControlServer(run.events, None)
    got = Collector()
    follower = RunFollower(run, got, poll_interval=0.3)
    follower.start()
    try:
        server.emit("step", step=1, loss=0.5)
        wait_until(lambda: got.events(), "the polled event", timeout=3)
        assert not follower.connected
    finally:
        follower.stop()


def test_torn_and_garbage_lines(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "r")
    run.create_folders()
    good = encode_event(make_event("step", step=1, loss=0.1))
    run.events.write_bytes(good + b'{"v":1,"type":"st\n' + b"[1, 2]\n" + encode_event(make_event("step", step=2)) + b'{"v":1,"ty')
    follower = RunFollower(run, lambda b: None)
    events = [e for b in follower.read() for e in b.events]
    assert [e["step"] for e in events] == [1, 2]  # the bad line and the non-event skipped; the torn one waits
    with open(run.events, "ab") as fh:
        fh.write(b'pe":"step","step":3}\n')
    assert [e["step"] for b in follower.read() for e in b.events] == [3]
    assert decode_chunk(b"\n\n") == [] and decode_chunk(good + b"\n" + good) == [decode_chunk(good)[0]] * 2


def test_a_replaced_log_is_read_again_from_the_start(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "r")
    run.create_folders()
    run.events.write_bytes(b"".join(encode_event(make_event("step", step=i)) for i in range(5)))
    follower = RunFollower(run, lambda b: None)
    assert sum(len(b.events) for b in follower.read()) == 5
    replacement = run.root / "new.jsonl"
    replacement.write_bytes(encode_event(make_event("step", step=99)))
    os.replace(replacement, run.events)
    batches = list(follower.read())
    assert batches[0].reset and [e["step"] for b in batches for e in b.events] == [99]


def test_liveness_follows_the_pid_file(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "r")
    run.create_folders()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        write_pidfile(run.pidfile, child.pid)
        got = Collector()
        follower = RunFollower(run, got, poll_interval=0.2)
        follower.start()
        wait_until(lambda: got.batches and got.batches[-1].alive, "alive")
        assert got.batches[-1].pid == child.pid
        child.kill()
        child.wait()
        killed = time.monotonic()
        wait_until(lambda: not got.batches[-1].alive, "dead", timeout=3)
        assert time.monotonic() - killed < 1.5
        follower.stop()
    finally:
        child.kill()
        child.wait()


def test_trainer_log_starts_at_its_tail_and_keeps_progress_bars_last_state(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "r")
    run.create_folders()
    run.log.write_text("".join(f"old line {i}\n" for i in range(5000)))
    follower = RunFollower(run, lambda b: None, log_tail_bytes=1000)
    lines = [line for b in follower.read(replay=True) for line in b.log_lines]
    assert lines[-1] == "old line 4999" and len(lines) < 100
    assert all(line.startswith("old line ") for line in lines)  # no line cut in half
    with open(run.log, "a") as fh:
        fh.write(" 50%|#####     | 1/2\r100%|##########| 2/2\n\x1b[31mred\x1b[0m\n")
    assert [line for b in follower.read() for line in b.log_lines] == ["100%|##########| 2/2", "red"]
    assert clean_log_line(b"\r\r\n") == ""


def test_two_followers_attached_at_once_both_see_everything(tmp_path: Path) -> None:
    """Two TUIs on one live run (say, two SSH logins): each gets every event, once, in order,
    and both get the live ones over the socket at the same time."""
    run = RunDir(tmp_path / "r")
    run.create_folders()
    server = ControlServer(run.events, run.socket)
    for seq in range(500):  # history before either attaches
        server.emit("step", step=seq, loss=0.1)
    first, second = Collector(), Collector()
    followers = [RunFollower(run, got, poll_interval=5.0, coalesce=0.001) for got in (first, second)]
    for follower in followers:
        follower.start()
    try:
        wait_until(lambda: len(first.events()) == 500 and len(second.events()) == 500, "both replays")
        wait_until(lambda: len(server._clients) == 2, "both on the socket")
        for seq in range(500, 1500):
            server.emit("step", step=seq, loss=0.1)
        # poll_interval is 5 s: arriving well before it means the socket woke both
        wait_until(lambda: len(first.events()) == 1500 and len(second.events()) == 1500, "both live", timeout=4)
        for got in (first, second):
            assert [e["step"] for e in got.events()] == list(range(1500))
    finally:
        for follower in followers:
            follower.stop()
        server.close()
