"""Time from starting `tuitrain` / `tuitrain cull DIR` / `tuitrain config RUN` to its first frame, in a pseudo-terminal.

Target (issue 5): first frame under 0.7 s on the 2-core dev machine; the TUI never imports torch.
Issue 23: first frame of every screen under 0.5 s on an idle machine, also measured with
--neighbour (a CPU-bound process beside it, bench/neighbour.py).

Each command runs --runs times (interleaved, so machine noise hits all alike) in a
120x40 pseudo-terminal; "first frame" is the moment the screen's own text has
arrived (the home screen's workspace line; the review's title with its count),
"first picture" the first half-cells of the review's image.

"auto" outside tmux lets textual-image ask the terminal what it supports; the
pseudo-terminal answers the device-attributes query as xterm does (no Sixel)
and, like most terminals, not the Kitty-graphics one, which therefore waits for
its 0.1 s time-out. Inside tmux (how tuitrain is meant to be used), auto picks
half-cells without asking, so it starts like the "halfcell" rows. Bytecode
caches are written as an installed tuitrain has them, and a warm-up run of each
command comes first.
The config editor's first frame is its form: the first tab's first field and the tab bar.
Run: python bench/tui_startup.py [--runs N] [--neighbour] [--only config]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from neighbour import add_argument, describe, neighbour  # noqa: E402
from tui_pty import Terminal, contains  # noqa: E402

HALF_CELLS = "\u2580" * 8
ATTACH_TEXT = ("faery", "learning rate")  # the dashboard's header and its side panel


def folder_of_images(count: int = 200) -> Path:
    """200 small JPEGs with captions: the scan, not decoding, is what startup pays for."""
    folder = Path(tempfile.mkdtemp(prefix="tuitrain-bench-startup-")) / "10_faery"
    folder.mkdir()
    for index in range(count):
        Image.new("RGB", (768, 512), (index % 256, 80, 160)).save(folder / f"img_{index:03d}.jpg", quality=85)
        (folder / f"img_{index:03d}.txt").write_text(f"photo {index}\n")
    return folder


def history(run: Path) -> None:
    """An earlier attempt's events (a finished 50-step run), so the dashboard replays a curve."""
    from tuitrain.runs.events import encode_event, make_event

    started = time.time() - 600
    events = [make_event("started", run=run.name, total_steps=50, total_epochs=1, pid=1, resumed_from=None)]
    for step in range(1, 51):
        events.append(make_event("step", step=step, epoch=1, loss=0.2 - step / 1000, lr=1e-4, grad_norm=1.0,
                                 it_per_s=2.0))
    events.append(make_event("finished", status="completed", reason="done", step=50))
    for offset, event in enumerate(events):
        event["time"] = started + offset
    (run / "events.jsonl").write_bytes(b"".join(encode_event(event) for event in events))


def run_once(
    command: list[str], env: dict[str, str], frame: tuple[str, ...], picture: bool
) -> tuple[float, float | None]:
    term = Terminal(command, (120, 40), env, answer_da1=True)
    try:
        first = term.wait_for(contains(*frame), term.started, timeout=20)
        if first is None:
            raise SystemExit(f"no first frame from {' '.join(command)}")
        shown = term.wait_for(contains(HALF_CELLS), term.started, timeout=20) if picture else None
        term.send(b"\x11" if "config" in command else b"q")  # ctrl+q: q would be typed into the form
        term.process.wait(timeout=10)
        return first - term.started, (shown - term.started) if shown is not None else None
    finally:
        term.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--only", default="", help="run only the cases whose name contains this text")
    add_argument(parser)
    args = parser.parse_args()
    folder = folder_of_images()
    home = Path(tempfile.mkdtemp(prefix="tuitrain-bench-home-"))
    env = {
        **os.environ,
        "TERM": "xterm-256color",
        "COLORTERM": "truecolor",
        "TUITRAIN_WORKSPACE": str(home / "runs"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_CACHE_HOME": str(home / "cache"),
    }
    env.pop("TMUX", None)
    # As installed: bytecode caches are written (this dev machine sets PYTHONDONTWRITEBYTECODE,
    # which would make every run compile tuitrain from source); one warm-up run writes them.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    base = [sys.executable, "-m", "tuitrain"]
    subprocess.run([*base, "new", "faery", "--preset", "sd15-lora", "--data", str(folder)], env=env, check=True,
                   capture_output=True)
    subprocess.run([*base, "check", "--data", str(folder)], env=env, capture_output=True)  # warm the scan cache
    history(home / "runs" / "faery")  # the dashboard replays a finished attempt
    halfcell = {**env, "TUITRAIN_IMAGE_PROTOCOL": "halfcell"}
    cases = {
        "tuitrain (halfcell)": ([*base], halfcell, ("workspace", "faery"), False),
        "tuitrain (auto)": ([*base], env, ("workspace", "faery"), False),
        "tuitrain cull DIR (halfcell)": ([*base, "cull", str(folder)], halfcell, ("10_faery", "1/200"), True),
        "tuitrain cull DIR (auto)": ([*base, "cull", str(folder)], env, ("10_faery", "1/200"), True),
        "tuitrain config RUN": ([*base, "config", "faery"], halfcell, ("preset sd15-lora", "model.family", "1 Model"),
                                False),
        "tuitrain attach RUN": ([*base, "attach", "faery"], halfcell, ATTACH_TEXT, False),
    }
    cases = {name: case for name, case in cases.items() if args.only in name}
    for command, case_env, frame, picture in cases.values():
        run_once(command, case_env, frame, picture)  # warm-up: bytecode and scan caches
    floor: list[float] = []
    frames: dict[str, list[float]] = {name: [] for name in cases}
    pictures: dict[str, list[float]] = {name: [] for name in cases}
    with neighbour(args.neighbour):
        for _ in range(args.runs):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], check=True)
            floor.append(time.perf_counter() - started)
            for name, (command, case_env, frame, picture) in cases.items():
                first, shown = run_once(command, case_env, frame, picture)
                frames[name].append(first)
                if shown is not None:
                    pictures[name].append(shown)
        load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"{args.runs} runs, 120x40 pty, 200-image folder, {describe(args.neighbour)}; "
          f"load average {load} on {os.cpu_count()} cores")
    print(f"python -c pass: median {statistics.median(floor):.3f} s")
    print(f"{'command':<30} {'first frame':>12} {'min':>7} {'max':>7} {'first picture':>14}")
    for name in cases:
        med = statistics.median(frames[name])
        pic = f"{statistics.median(pictures[name]):.3f}" if pictures[name] else "-"
        verdict = "OK" if med < 0.5 else "OVER"
        print(f"{name:<30} {med:10.3f} s {min(frames[name]):7.3f} {max(frames[name]):7.3f} {pic:>12} s  {verdict}")


if __name__ == "__main__":
    main()
