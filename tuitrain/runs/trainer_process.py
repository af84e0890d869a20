"""What `train --detach` starts: `python -m tuitrain.runs.trainer_process RUN_DIR`.

The trainer's own entry point (tuitrain.trainer.main), with the launcher's part done first in
the same process: library warnings and log records go to trainer.log tagged (runs/library_output.py),
so the dashboard's log panel shows what the trainer says, not what its libraries mutter. The
process's stdout and stderr are trainer.log already (cmd_train._detach opens it).
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from tuitrain.runs.library_output import library_output_to

    with library_output_to(sys.stderr):
        from tuitrain.trainer.main import main as trainer_main

        return trainer_main(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    raise SystemExit(main())
