"""`tuitrain attach RUN`: the live dashboard of a run, from any login.

It replays the run's whole history (loss curve, samples, log) and follows it
live; leaving it (d, or q then d) never stops the trainer. A run that was never
started opens too: t starts it.
"""

from __future__ import annotations

import argparse

from tuitrain.cli.common import target, tui_settings
from tuitrain.cli.main import UserError


def run(args: argparse.Namespace) -> int:
    run_dir, config_path = target(args)
    if run_dir is None:
        raise UserError(f"{args.target}: a config file is not a run; `tuitrain train {args.target}` makes one")
    settings, resolver = tui_settings()
    from tuitrain.tui.dashboard.app import AttachApp

    app = AttachApp(run_dir, resolver.result().protocol, settings)
    how = app.run()
    from tuitrain.runs import RunState, run_status

    state = run_status(run_dir).state
    if how == "detach" and state in (RunState.RUNNING, RunState.PAUSED):
        print(f"Detached: {run_dir.name} keeps training. Back to it: tuitrain attach {run_dir.name}")
    elif how == "stop":
        print(f"Stopping {run_dir.name}: the trainer saves, then stops (tuitrain runs shows when).")
    return 0
