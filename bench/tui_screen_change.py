"""Screen changes from the home screen as a user sees them: key sent to the new screen on the terminal, in a pty.

Issue 23's goal: a screen change within 100 ms on an idle machine (and its figure beside a
CPU-bound neighbour, --neighbour). `tuitrain` runs in a 120x40 pseudo-terminal on a workspace
with one run (sd15-lora, 200 small captioned images, one earlier attempt in its history so the
dashboard has a loss curve to draw); the bench presses a home key, waits for text only the new
screen draws, waits --dwell seconds, goes back, and waits for the home screen's own text.

  e / escape   the config editor (its first tab's form), and back
  o / d        the dashboard (its status line), and back (d detaches)
  d / escape   the data review (its frame: "scanning..." or, when the scan is quicker than that
               frame, the image count), and back; "filled" times the count (the folder scanned)
Going back with Escape includes the terminal input parser's wait for the rest of a possible escape
sequence (Textual's ESCDELAY, 100 ms by default), as a user's Escape does.

Run: python bench/tui_screen_change.py [--rounds 5] [--neighbour]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from neighbour import add_argument, describe, neighbour  # noqa: E402
from tui_pty import Terminal, contains  # noqa: E402
from tui_startup import folder_of_images, history  # noqa: E402

HOME_TEXT = ("workspace", "faery")  # the home screen's header and its table's run
# key, what the new screen draws, key back
CHANGES = {
    "config editor": (b"e", ("preset sd15-lora", "model.family"), b"\x1b"),
    "dashboard": (b"o", ("learning rate",), b"d"),
    "data review": (b"d", ("scanning", "1/200"), b"\x1b"),
}
FILLED = {"data review": "1/200"}


def visible_text(output: bytes) -> str:
    """The printable text of terminal output, escape sequences taken out (enough to see which screen it drew)."""
    text = re.sub(rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[@-_]", b" ", output)
    return re.sub(r" {2,}", "  ", text.decode("utf-8", "replace"))


def any_of(*texts: str) -> Callable[[bytes], bool]:
    """A matcher: one of the texts has arrived."""
    matchers = [contains(text) for text in texts]
    return lambda data: any([matcher(data) for matcher in matchers])


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
    filled: dict[str, list[float]] = {}
    with neighbour(args.neighbour):
        term = Terminal(base, (120, 40), env, answer_da1=True)
        try:
            if term.wait_for(contains(*HOME_TEXT), term.started, timeout=30) is None:
                raise SystemExit("no home screen")
            time.sleep(2.0)
            for round_ in range(args.rounds + 1):  # the first round imports each screen's modules: reported apart
                for name, (key, text, back_key) in CHANGES.items():
                    sent = term.send(key)
                    shown = term.wait_for(any_of(*text), sent, timeout=30)
                    if name in FILLED:
                        done = term.wait_for(contains(FILLED[name]), sent, timeout=30)
                        if done is not None and round_:
                            filled.setdefault(name, []).append(done - sent)
                    if shown is None:
                        raise SystemExit(f"{name}: {text} never shown; the text the app wrote after the key:\n"
                                         + visible_text(term.output_since(sent))[-3000:])
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
    print(f"{'screen':<16} {'open: median':>13} {'p90':>7} {'back: median':>13} {'p90':>7}  "
          "(back with Escape includes its 100 ms wait; the verdict leaves it out)")
    escape_wait = int(os.environ.get("ESCDELAY", "100")) / 1000  # Textual's wait after a lone Escape byte
    for name, (_key, _text, back_key) in CHANGES.items():
        work_back = statistics.median(back[name]) - (escape_wait if back_key == b"\x1b" else 0.0)
        verdict = "OK" if statistics.median(there[name]) <= 0.1 and work_back <= 0.1 else "OVER"
        print(f"{name:<16} {statistics.median(there[name]) * 1000:10.0f} ms {percentile(there[name], 0.9) * 1000:4.0f} ms"
              f" {statistics.median(back[name]) * 1000:10.0f} ms {percentile(back[name], 0.9) * 1000:4.0f} ms  {verdict}")
    for name, times in filled.items():
        print(f"{name}: filled (the count shown) median {statistics.median(times) * 1000:.0f} ms, "
              f"p90 {percentile(times, 0.9) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
