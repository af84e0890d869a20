"""`tuitrain runs`: the runs of the workspace and their state (what the TUI home lists).

Deleted runs (in the workspace's trash) are not listed; a last line says how many there are.
"""

from __future__ import annotations

import argparse

from tuitrain.cli.common import workspace
from tuitrain.runs import list_runs, run_status
from tuitrain.runs.pick import read_pick
from tuitrain.runs.trash import list_trashed_runs


def run(args: argparse.Namespace) -> int:
    ws = workspace(args)
    runs = list_runs(ws)
    deleted = len(list_trashed_runs(ws))
    trash_line = f"{deleted} deleted run(s) in the trash: tuitrain delete --list-trash" if deleted else ""
    if not runs:
        print(f"No runs in {ws}. Make one: tuitrain new NAME --preset sd15-lora --data DIR")
        if trash_line:
            print(trash_line)
        return 0
    width = max(len(r.name) for r in runs)
    for r in runs:
        status = run_status(r)
        progress = f"  step {status.step}/{status.total_steps}" if status.step is not None and status.total_steps else ""
        reason = f"  ({status.reason})" if status.reason else ""
        chosen = read_pick(r)
        picked = f"  picked: step {chosen['step']}" if chosen else ""
        print(f"{r.name:<{width}}  {status.state.value}{progress}{reason}{picked}")
    if trash_line:
        print(f"({trash_line})")
    return 0
