"""Screen changes from the home screen as a user sees them: key sent to the new screen on the terminal, in a pty.

Issue 23's goal: a screen change within 100 ms on an idle machine (and its figure beside a
CPU-bound neighbour, --neighbour). `tuitrain` runs in a 120x40 pseudo-terminal on a workspace
with one run (sd15-lora, 200 small captioned images, one earlier attempt in its history so the
dashboard has a loss curve to draw); the bench presses a home key, waits for text only the new
screen draws, waits --dwell seconds, goes back, and waits for the home screen's own text.

  e / escape   the config editor (its first tab's form), and back
  o / d        the dashboard (its status line), and back (d detaches)
  d / escape   the data review (its title with the image count), and back

Run: python bench/tui_screen_change.py [--rounds 5] [--neighbour]
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from neighbour import add_argument, describe, neighbour  # noqa: E402
from tui_pty import Terminal, contains  # noqa: E402
from tui_startup import folder_of_images  # noqa: E402

HOME_TEXT = ("workspace", "faery")  # the home screen's header and its table's run
# key, what the new screen draws, key back
CHANGES = {
    "config editor": (b"e", ("preset sd15-lora", "model.family"), b"\x1b"),
    "dashboard": (b"o", ("loss",), b"d"),
    "data review": (b"d", ("1/200",), b"\x1b"),
}


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


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="times through the three screens")
    parser.add_argument("--dwell", type=float, default=1.0, help="seconds on each screen before going back")
    add_argument(parser)
    args = parser.parse_args()
    folder = folder_of_images()
    home = Path(tempfile.mkdtemp(prefix="tuitrain-bench-screens-"))
    env = {
        **os.environ, "TERM": "xterm-256color", "COLORTERM": "truecolor", "TUITRAIN_IMAGE_PROTOCOL": "halfcell",
        "TUITRAIN_WORKSPACE": str(home / "runs"), "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_CACHE_HOME": str(home / "cache"),
    }
    env.pop("TMUX", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # bytecode caches, as an installed tuitrain has them
    base = [sys.executable, "-m", "tuitrain"]
    subprocess.run([*base, "new", "faery", "--preset", "sd15-lora", "--data", str(folder)], env=env, check=True,
                   capture_output=True)
    subprocess.run([*base, "check", "faery"], env=env, capture_output=True)  # warm the scan cache
    history(home / "runs" / "faery")
    there: dict[str, list[float]] = {name: [] for name in CHANGES}
    back: dict[str, list[float]] = {name: [] for name in CHANGES}
    with neighbour(args.neighbour):
        term = Terminal(base, (120, 40), env, answer_da1=True)
        try:
            if term.wait_for(contains(*HOME_TEXT), term.started, timeout=30) is None:
                raise SystemExit("no home screen")
            time.sleep(2.0)
            for round_ in range(args.rounds + 1):  # the first round imports each screen's modules: reported apart
                for name, (key, text, back_key) in CHANGES.items():
                    sent = term.send(key)
                    shown = term.wait_for(contains(*text), sent, timeout=30)
                    if shown is None:
                        raise SystemExit(f"{name}: {text} never shown")
                    time.sleep(args.dwell)
                    sent_back = term.send(back_key)
                    home_again = term.wait_for(contains(*HOME_TEXT), sent_back, timeout=30)
                    if home_again is None:
                        raise SystemExit(f"{name}: the home screen never came back")
                    time.sleep(args.dwell)
                    if round_ == 0:
                        print(f"first time: {name} {(shown - sent) * 1000:.0f} ms, back {(home_again - sent_back) * 1000:.0f} ms")
                        continue
                    there[name].append(shown - sent)
                    back[name].append(home_again - sent_back)
            term.send(b"q")
            term.process.wait(timeout=10)
        finally:
            term.close()
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"{args.rounds} rounds, 120x40 pty, {describe(args.neighbour)}; load average {load} on {os.cpu_count()} cores")
    print(f"{'screen':<16} {'open: median':>13} {'p90':>7} {'back: median':>13} {'p90':>7}")
    for name in CHANGES:
        verdict = "OK" if statistics.median(there[name]) <= 0.1 and statistics.median(back[name]) <= 0.1 else "OVER"
        print(f"{name:<16} {statistics.median(there[name]) * 1000:10.0f} ms {percentile(there[name], 0.9) * 1000:4.0f} ms"
              f" {statistics.median(back[name]) * 1000:10.0f} ms {percentile(back[name], 0.9) * 1000:4.0f} ms  {verdict}")


if __name__ == "__main__":
    main()
