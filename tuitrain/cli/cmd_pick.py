"""`tuitrain pick RUN STEP|best|last`: make one save the run's output (runs/pick.py says what moves where)."""

from __future__ import annotations

import argparse

from tuitrain.cli.common import target
from tuitrain.cli.main import UserError
from tuitrain.runs import RunState, run_status
from tuitrain.runs.pick import PickError, pick


def run(args: argparse.Namespace) -> int:
    found, _ = target(args)
    if found is None:
        raise UserError(f"{args.target}: not a run (pick works on a run's saves)")
    state = run_status(found).state
    if state in (RunState.RUNNING, RunState.PAUSED):
        raise UserError(f"run {found.name!r} is {state.value}: pick a save when it has finished or been stopped "
                        "(its final save would take the name)")
    try:
        picked = pick(found, args.save)
    except PickError as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:
        raise UserError(f"could not copy the save into {found.output}: {exc.strerror or exc}") from None
    for old, new in picked.kept:
        print(f"kept {old.name} as {new.name}")
    loss = f" (eval loss {picked.save.eval_loss:.6g})" if picked.save.eval_loss is not None else ""
    source = "" if picked.save.path == picked.target else f", a copy of {picked.save.path.name}"
    print(f"picked step {picked.save.step}{loss}: {picked.target}{source}")
    return 0
