"""How many threads the trainer's maths libraries may use, set before torch is imported.

torch's OpenMP pool defaults to every core of the machine and spins while it waits for
work. Beside another busy process (a second run, a test suite, a neighbour's job) the
spinning threads fight it for the cores: `demo --headless` on a loaded 2-core machine
took 45 s of CPU instead of 7. So the pool gets the cores this process may actually run
on (its CPU affinity: a container's or taskset's limit), capped, and its threads sleep
rather than spin while waiting; a neighbour then costs wall time, not extra CPU.
Whatever the user set in the environment wins.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping

MAX_THREADS = 16  # beyond this the trainer's CPU side (data, optimizer steps on CPU) gains nothing measurable
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def available_cores() -> int:
    """The cores this process may run on (its affinity), not the machine's count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def thread_settings(environ: MutableMapping[str, str]) -> dict[str, str]:
    """The variables to add to `environ`: thread counts and passive waiting, each unless already set.

    A user's OMP_NUM_THREADS sets the others' default too: BLAS with another thread count than torch's
    sums in another order, and a run resumed under one setting would no longer match bit for bit."""
    given = environ.get("OMP_NUM_THREADS", "")
    threads = given if given.isdigit() and int(given) > 0 else str(min(available_cores(), MAX_THREADS))
    wanted = {name: threads for name in THREAD_VARIABLES}
    wanted["OMP_WAIT_POLICY"] = "PASSIVE"  # idle pool threads sleep instead of spinning on a busy core
    return {name: value for name, value in wanted.items() if name not in environ}


def limit_threads(environ: MutableMapping[str, str] | None = None) -> int:
    """Set the trainer's thread variables (its worker processes inherit them); returns the thread count.

    Call before torch is imported: OpenMP reads them once. Where torch is loaded already
    (a test training in-process), its intra-op count is set directly, the user's choice kept.
    """
    environ = os.environ if environ is None else environ
    environ.update(thread_settings(environ))
    threads = int(environ["OMP_NUM_THREADS"]) if environ["OMP_NUM_THREADS"].isdigit() else available_cores()
    torch = sys.modules.get("torch")
    if torch is not None and environ is os.environ:
        torch.set_num_threads(max(1, threads))
    return threads
