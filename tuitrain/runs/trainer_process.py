"""What `train --detach` starts: `python -m tuitrain.runs.trainer_process RUN_DIR`.

The trainer's own entry point (tuitrain.trainer.main), with the launcher's part done first in
the same process: library warnings and log records go to trainer.log tagged (runs/library_output.py),
so the dashboard's log panel shows what the trainer says, not what its libraries mutter. The
process's stdout and stderr are trainer.log already (cmd_train._detach opens it).

A crash inside native code (a segfault in a collective of torch's gloo backend killed rank 0
of a two-process FSDP backup once in a CI run) left only the launcher's "Signal 11" and no
Python stack; faulthandler writes every thread's stack to trainer.log before the process dies.
"""

from __future__ import annotations

import faulthandler
import sys


def main(argv: list[str] | None = None) -> int:
    from tuitrain.runs.library_output import library_output_to

    faulthandler.enable(file=sys.stderr, all_threads=True)

    with library_output_to(sys.stderr):
        from tuitrain.trainer.main import main as trainer_main

        return trainer_main(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    raise SystemExit(main())
