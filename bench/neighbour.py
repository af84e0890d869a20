"""A CPU-bound process beside a benchmark: `--neighbour` in the bench/ scripts.

Issue 23's goals hold on an idle machine and with one busy neighbour (another run, a test
suite): the neighbour is a Python busy loop in its own process, started before the
measurement and ended after it.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
from collections.abc import Iterator


def add_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--neighbour", action="store_true",
                        help="run a CPU-bound process beside the measurement (a busy loop on one core)")


@contextlib.contextmanager
def neighbour(enabled: bool = True) -> Iterator[None]:
    """A busy loop in its own process for the duration of the block (nothing when not enabled)."""
    if not enabled:
        yield
        return
    process = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        process.kill()
        process.wait()


def describe(enabled: bool) -> str:
    return "with a CPU-bound neighbour" if enabled else "no neighbour"
