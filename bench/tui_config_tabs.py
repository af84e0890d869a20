"""Tab switches in the config editor as a user sees them: key sent to the new tab on screen, in a pty.

bench/config_editor_typing.py times tab switches through Pilot, whose wait after each key
asks every widget of the screen for an answer (about 1,100 of them here): that adds work a
real terminal never does. This runs `tuitrain config RUN` in a 120x40 pseudo-terminal, sends
alt+N as terminals do (ESC N) and waits for the output to name the field the cursor moved
to (the help panel shows `section.key` of the first field of the new tab).

Issue 23's goal: a tab switch within 100 ms on an idle machine; --neighbour runs a
CPU-bound process beside it (bench/neighbour.py). The editor is given --settle seconds
after its first frame before the first switch.
Run: python bench/tui_config_tabs.py [--runs 3] [--rounds 2] [--neighbour]
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

# alt+N, text only the new tab paints: the section its first field names in the help panel (tab 1: its label)
TABS = {2: "data.", 3: "training.", 4: "optimizer.", 5: "lora.", 6: "sampling.", 7: "saving.", 1: "version"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="editor starts")
    parser.add_argument("--rounds", type=int, default=2, help="times through the seven tabs per start")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds between the first frame and the keys")
    add_argument(parser)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="tuitrain-bench-tabs-"))
    folder = home / "10_faery"
    folder.mkdir()
    from PIL import Image

    for index in range(6):
        Image.new("RGB", (96, 64), (40 * index, 90, 160)).save(folder / f"{index}.png")
    env = {**os.environ, "TERM": "xterm-256color", "COLORTERM": "truecolor", "TUITRAIN_WORKSPACE": str(home / "runs"),
           "XDG_CONFIG_HOME": str(home / "config"), "XDG_CACHE_HOME": str(home / "cache"),
           "TUITRAIN_IMAGE_PROTOCOL": "halfcell"}
    env.pop("TMUX", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    base = [sys.executable, "-m", "tuitrain"]
    subprocess.run([*base, "new", "faery", "--preset", "sdxl-lora", "--data", str(folder)], env=env, check=True,
                   capture_output=True)
    switches: list[float] = []
    firsts: list[float] = []
    visits: dict[tuple[bool, int], list[float]] = {}  # (first visit, tab) -> seconds, counted starts only
    with neighbour(args.neighbour):
        for _ in range(args.runs + 1):  # the first start writes bytecode caches: not counted
            term = Terminal([*base, "config", "faery"], (120, 40), env, answer_da1=True)
            try:
                first = term.wait_for(contains("preset sdxl-lora", "1 Model"), term.started, timeout=30)
                if first is None:
                    raise SystemExit("no first frame")
                time.sleep(args.settle)
                times = []
                for round_ in range(args.rounds):
                    for number, section in TABS.items():
                        sent = term.send(b"\x1b" + str(number).encode())
                        shown = term.wait_for(contains(section), sent, timeout=20)
                        if shown is None:
                            raise SystemExit(f"alt+{number}: {section} never shown")
                        times.append(shown - sent)
                        # tab 1 is on screen from the start: its first switch back is a revisit
                        visits.setdefault((round_ == 0 and number != 1, number), []).append(shown - sent)
                        time.sleep(0.3)
                term.send(b"\x11")
                term.process.wait(timeout=10)
            finally:
                term.close()
            firsts.append(first - term.started)
            switches.extend(times)
    firsts, switches = firsts[1:], switches[len(TABS) * args.rounds:]
    visits = {key: values[1:] for key, values in visits.items()}  # the uncounted first start
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"{args.runs} starts x {args.rounds} rounds of 7 tabs, 120x40 pty, {describe(args.neighbour)}; "
          f"load average {load} on {os.cpu_count()} cores")
    print(f"first frame: median {statistics.median(firsts):.3f} s")
    ordered = sorted(switches)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    verdict = "OK" if statistics.median(switches) <= 0.1 else "OVER"
    print(f"tab switch: median {statistics.median(switches) * 1000:.0f} ms, p90 {p90 * 1000:.0f} ms, "
          f"max {ordered[-1] * 1000:.0f} ms  {verdict}")
    for first_visit, label in ((True, "first visit"), (False, "revisit")):
        cells = [f"{number} {statistics.median(values) * 1000:.0f}" for (was_first, number), values in sorted(visits.items())
                 if was_first == first_visit and values]
        print(f"{label}, median ms by tab: " + ", ".join(cells))


if __name__ == "__main__":
    main()
