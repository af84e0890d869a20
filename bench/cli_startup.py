"""Wall time of `tuitrain --help` and of light commands, against bare Python startup.

Target (issue 2): `tuitrain --help` under 0.3 s median on the 2-core dev machine.
Run: python bench/cli_startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def timed(cmd: list[str], runs: int, env: dict[str, str]) -> list[float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=False)
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    exe = shutil.which("tuitrain")
    base = [exe] if exe else [sys.executable, "-m", "tuitrain"]
    env = {**os.environ, "TUITRAIN_WORKSPACE": tempfile.mkdtemp(prefix="tuitrain-bench-")}
    subprocess.run([*base, "new", "b1", "--preset", "sd15-lora"], env=env, capture_output=True, check=True)
    cases = {
        "python -c pass (floor)": [sys.executable, "-c", "pass"],
        "tuitrain --help": [*base, "--help"],
        "tuitrain presets": [*base, "presets"],
        "tuitrain check b1": [*base, "check", "b1"],
    }
    # Interleave the cases so machine noise hits them alike.
    results: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.runs):
        for name, cmd in cases.items():
            results[name] += timed(cmd, 1, env)
    floor = statistics.median(results["python -c pass (floor)"])
    print(f"{'command':<26} {'median':>8} {'min':>8} {'max':>8} {'x floor':>8}")
    for name, times in results.items():
        med = statistics.median(times)
        print(f"{name:<26} {med:8.3f} {min(times):8.3f} {max(times):8.3f} {med / floor:8.2f}")
    help_median = statistics.median(results["tuitrain --help"])
    print(f"\ntuitrain --help median {help_median:.3f} s (target < 0.300 s): {'OK' if help_median < 0.3 else 'OVER'}")


if __name__ == "__main__":
    main()
