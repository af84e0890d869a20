"""Dashboard throughput: replay time, and live lag and CPU share at 1,000 events per second.

    python bench/dashboard_throughput.py [--rate 1000] [--seconds 20] [--history 100000]

1. Replay: 100,000 events written to a run's events.jsonl, read by the follower
   and folded into the dashboard's model (what `tuitrain attach` does first).
2. Live: a synthetic trainer (tests/dashboard/fake_trainer.py: the real
   ControlServer, socket and event file) sends `--rate` events per second while
   `tuitrain attach` runs in a real pseudo-terminal (160x48), drawing everything.
   The dashboard writes, at each redraw, how old the newest event it has drawn
   is (TUITRAIN_DASHBOARD_STATS); the TUI's CPU share comes from /proc.
   A lag that stays flat from the first third of the run to the last is keeping up.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pty
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.dashboard.fake_trainer import write_history  # noqa: E402
from tuitrain.runs.follow import RunFollower  # noqa: E402
from tuitrain.runs.layout import RunDir  # noqa: E402
from tuitrain.tui.dashboard.model import RunModel  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_replay(root: Path, events: int) -> None:
    run = RunDir(root / "replay")
    run.create_folders()
    write_history(run, events, steps_per_epoch=1000, total_steps=events)
    size = run.events.stat().st_size
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        model = RunModel()
        for batch in RunFollower(run, lambda b: None).read(replay=True):
            model.apply(batch.events)
        times.append(time.perf_counter() - t0)
        assert model.events_seen == events, model.events_seen
    print(f"replay: {events:,} events ({size / 1e6:.1f} MB): best {min(times):.3f} s, "
          f"median {statistics.median(times):.3f} s (read + decode + model)")


def bench_attach(root: Path, events: int) -> None:
    """`tuitrain attach` in a terminal on a 100k-event run: time until all of it is on the screen."""
    run = RunDir(root / "replay")  # written by bench_replay
    (run.root / "config.toml").write_text("")
    stats = root / "attach-stats.jsonl"
    start = time.monotonic()
    tui, master, _ = spawn_tui(run, stats)
    try:
        while time.monotonic() - start < 60:
            rows = [json.loads(line) for line in stats.read_text().splitlines()] if stats.exists() else []
            if rows and rows[-1]["events"] >= events:
                break
            time.sleep(0.01)
        shown = time.monotonic() - start
    finally:
        os.write(master, b"q")
        try:
            tui.wait(10)
        except subprocess.TimeoutExpired:
            tui.kill()
    print(f"attach: {events:,} events on the screen {shown:.2f} s after `tuitrain attach` started "
          "(Python and Textual start-up included)")


def spawn_tui(run: RunDir, stats: Path) -> tuple[subprocess.Popen[bytes], int, threading.Thread]:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 48, 160, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "COLORTERM": "truecolor", "TUITRAIN_IMAGE_PROTOCOL": "halfcell",
           "TUITRAIN_DASHBOARD_STATS": str(stats), "TUITRAIN_WORKSPACE": str(run.root.parent)}
    proc = subprocess.Popen([sys.executable, "-m", "tuitrain", "attach", str(run.root)], stdin=slave, stdout=slave,
                            stderr=slave, env=env, cwd=REPO, start_new_session=True)
    os.close(slave)
    written = [0]

    def drain() -> None:  # the terminal: read (and drop) everything the app draws
        while True:
            try:
                data = os.read(master, 1 << 16)
            except OSError:
                return
            if not data:
                return
            written[0] += len(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    proc.master = master  # type: ignore[attr-defined]
    proc.written = written  # type: ignore[attr-defined]
    return proc, master, reader


def bench_live(root: Path, rate: float, seconds: float) -> None:
    run = RunDir(root / "live")
    subprocess.run([sys.executable, "-m", "tuitrain", "--workspace", str(root), "new", "live"], check=True,
                   capture_output=True, cwd=REPO)
    stats = root / "stats.jsonl"
    steps_per_s = rate / 1.1  # a memory event every 10 steps
    trainer = subprocess.Popen(
        [sys.executable, "-m", "tests.dashboard.fake_trainer", str(run.root), "--steps", str(int(steps_per_s * (seconds + 30))),
         "--rate", str(steps_per_s), "--steps-per-epoch", "1000", "--sample-every-epochs", "10", "--prompts", "3"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    tui, master, _ = spawn_tui(run, stats)
    try:
        time.sleep(3)  # start-up and replay of what the trainer already wrote
        lines0 = sum(1 for _ in open(run.events, "rb"))
        cpu0, t0, wall0 = cpu_seconds(tui.pid), time.monotonic(), time.time()
        time.sleep(seconds)
        cpu1, t1, wall1 = cpu_seconds(tui.pid), time.monotonic(), time.time()
        lines1 = sum(1 for _ in open(run.events, "rb"))
        os.kill(trainer.pid, 19)  # SIGSTOP: the same TUI with nothing arriving
        time.sleep(1)
        cpu2, t2 = cpu_seconds(tui.pid), time.monotonic()
        time.sleep(5)
        cpu3, t3 = cpu_seconds(tui.pid), time.monotonic()
        os.kill(trainer.pid, 18)
    finally:
        os.write(master, b"d")  # detach: the trainer goes on
        try:
            tui.wait(10)
        except subprocess.TimeoutExpired:
            tui.kill()
        trainer.kill()
        trainer.wait()
    rows = [json.loads(line) for line in stats.read_text().splitlines() if line.strip()]
    window = [r for r in rows if r["lag"] is not None and wall0 <= r["t"] <= wall1]
    third = max(1, len(window) // 3)
    first, last = [r["lag"] for r in window[:third]], [r["lag"] for r in window[-third:]]
    sent = (lines1 - lines0) / (t1 - t0)
    print(f"live: trainer sent {sent:,.0f} events/s for {t1 - t0:.0f} s; TUI redrew {len(window) / (t1 - t0):.1f} times/s, "
          f"terminal output {tui.written[0] / 1e6:.1f} MB in all")  # type: ignore[attr-defined]
    print(f"lag (newest event on screen, at each redraw): first third median {statistics.median(first) * 1000:.0f} ms, "
          f"last third median {statistics.median(last) * 1000:.0f} ms, p95 "
          f"{sorted(r['lag'] for r in window)[int(0.95 * (len(window) - 1))] * 1000:.0f} ms, "
          f"max {max(r['lag'] for r in window) * 1000:.0f} ms")
    print(f"TUI CPU share: {100 * (cpu1 - cpu0) / (t1 - t0):.1f} % of one core while following; "
          f"{100 * (cpu3 - cpu2) / (t3 - t2):.1f} % with the trainer silent ({os.cpu_count()} cores here)")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rate", type=float, default=1000, help="events per second from the synthetic trainer")
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--history", type=int, default=100_000)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="tuitrain-bench-") as tmp:
        root = Path(tmp)
        bench_replay(root, args.history)
        bench_attach(root, args.history)
        bench_live(root, args.rate, args.seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
