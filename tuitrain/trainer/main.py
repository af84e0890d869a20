"""The trainer process entry point: `python -m tuitrain.trainer.main RUN_DIR` (used by --detach)."""

from __future__ import annotations

import sys
from pathlib import Path

from tuitrain.config import ConfigError, load_config
from tuitrain.runs import RunDir
from tuitrain.runs.permissions import tighten, use_owner_only_umask


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    use_owner_only_umask()  # samples, backups, caches and outputs: owner-only, like the run folder
    run = RunDir(Path(args[0]).resolve())
    tighten(run.log)  # the log our stdout goes to was opened by `train --detach`, maybe with the umask's 0644
    try:
        config = load_config(run.config)
    except ConfigError as exc:
        print("\n".join(exc.lines()), file=sys.stderr)
        return 2
    from tuitrain.runs.threads import limit_threads

    limit_threads()  # before torch loads: the cores this process may use, threads that sleep when idle
    from tuitrain.trainer.loop import run_training

    return run_training(run, config, run.root)


if __name__ == "__main__":
    raise SystemExit(main())
