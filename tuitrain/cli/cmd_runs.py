"""`tuitrain runs`: the runs of the workspace and their state (what the TUI home lists)."""

from __future__ import annotations

import argparse

from tuitrain.cli.common import workspace
from tuitrain.runs import list_runs, run_status


def run(args: argparse.Namespace) -> int:
    ws = workspace(args)
    runs = list_runs(ws)
    if not runs:
        print(f"No runs in {ws}. Make one: tuitrain new NAME --preset sd15-lora --data DIR")
        return 0
    width = max(len(r.name) for r in runs)
    for r in runs:
        status = run_status(r)
        progress = f"  step {status.step}/{status.total_steps}" if status.step is not None and status.total_steps else ""
        reason = f"  ({status.reason})" if status.reason else ""
        print(f"{r.name:<{width}}  {status.state.value}{progress}{reason}")
    return 0
