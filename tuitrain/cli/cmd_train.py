"""`tuitrain train RUN|CONFIG [--detach]`: run the trainer in the foreground, or start it in the background.

A config file outside a run directory gets a run of its own in the workspace
(named after the file), so samples, backups and outputs always have a home.
A finished run is never trained again from step 0: `--more-epochs N` / `--more-steps N`
continue it from its final backup, `--as-new NAME` starts a new run from its config
(runs/continuation.py says why and holds the rules).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tuitrain.cli.cmd_check import run_verdict
from tuitrain.cli.common import target, workspace
from tuitrain.cli.main import EXIT_CANNOT_TRAIN, UserError
from tuitrain.config import Config, load_config, save_config
from tuitrain.config.io import resolve_path
from tuitrain.runs import RunDir, RunState, run_status
from tuitrain.runs import continuation
from tuitrain.runs.permissions import open_run_log
from tuitrain.runs.pidfile import write_pidfile


def _absolute_paths(config: Config, config_dir: Path) -> Config:
    """A copy whose local paths no longer depend on where the config file was."""
    data = config.model_dump()
    for key in ("base", "vae", "config"):
        value = data["model"][key]
        if value and resolve_path(value, config_dir).exists():
            data["model"][key] = str(resolve_path(value, config_dir).resolve())
    for concept in data["data"]["concepts"]:
        concept["path"] = str(resolve_path(concept["path"], config_dir).resolve())
    return Config.model_validate(data)


def _run_for_config(config: Config, config_path: Path, ws: Path) -> RunDir:
    name = config_path.stem
    run = RunDir(ws / name)
    n = 2
    while run.root.exists():
        run = RunDir(ws / f"{name}-{n}")
        n += 1
    run.create_folders()
    # The user's file first, then the absolute paths written over it in place: comments and layout stay.
    shutil.copyfile(config_path, run.config)
    save_config(_absolute_paths(config, config_path.parent), run.config)
    return run


def run(args: argparse.Namespace) -> int:
    run_dir, config_path = target(args)
    config = load_config(config_path, args.overrides)
    # check's own verdict (data, base model, config), before a run folder is made or torch is imported.
    verdict = run_verdict(config, config_path.parent)
    if not verdict.can_train:
        for line in verdict.refusals() or ["no data to train on (tuitrain check says more)"]:
            print(f"cannot train: {line}", file=sys.stderr)
        return EXIT_CANNOT_TRAIN
    more = bool(args.more_epochs or args.more_steps)
    if run_dir is None:
        if more or args.as_new:
            raise UserError(f"{config_path}: --more-epochs, --more-steps and --as-new take a run, not a config file")
        run_dir = _run_for_config(config, config_path, workspace(args))
        print(f"Training {config_path} as run {run_dir.name} ({run_dir.root})")
    elif args.as_new:
        run_dir = _as_new(run_dir, args.as_new, config, bool(args.overrides))
    else:
        status = run_status(run_dir)
        if status.state in (RunState.RUNNING, RunState.PAUSED):
            raise UserError(f"run {run_dir.name} is already {status.state.value}: tuitrain attach {run_dir.name}")
        if more:
            config = _with_more(run_dir, config, args)
        problem = continuation.continuation_problem(run_dir, config)
        if problem:
            raise UserError(problem)
        if args.overrides or more:
            save_config(config, run_dir.config)  # the run's snapshot is what it trains (and resumes) with
    multi = load_config(run_dir.config).distributed.processes != 1  # torchrun, through trainer/multi.py
    if args.detach:
        return _detach(run_dir, multi)
    if multi:
        from tuitrain.cli.foreground import train_processes_in_foreground

        return train_processes_in_foreground(run_dir, _detach)
    from tuitrain.cli.foreground import train_in_foreground
    from tuitrain.runs.permissions import use_owner_only_umask

    use_owner_only_umask()  # what the trainer writes is owner-only, as with --detach (trainer/main.py)
    return train_in_foreground(run_dir, load_config(run_dir.config), run_dir.root)


def _with_more(run: RunDir, config: Config, args: argparse.Namespace) -> Config:
    """The run's config with its total raised past the step it finished (or stopped) at."""
    if args.more_epochs and args.more_steps:
        raise UserError("--more-epochs and --more-steps: give one of them")
    if (args.more_epochs or 0) < 0 or (args.more_steps or 0) < 0:
        raise UserError("--more-epochs / --more-steps: must be a positive number")
    info = continuation.finished_run(run)
    if info is None:
        raise UserError(f"run {run.name} has not finished ({run_status(run).state.value}); "
                        f"`tuitrain train {run.name}` resumes it, with --set training.epochs=N to change its length")
    try:
        config = continuation.with_more(config, info, epochs=args.more_epochs or 0, steps=args.more_steps or 0)
    except ValueError as exc:
        raise UserError(f"--more-epochs: {exc}") from None
    total = continuation.planned_total(config, info)
    print(f"Continuing {run.name} from step {info.step} to step {total if total else '?'}")
    if config.training.lr_scheduler not in ("constant", "constant_with_warmup"):
        print(f"  training.lr_scheduler = {config.training.lr_scheduler!r} now spans the new length: "
              f"the learning rate steps up again at step {info.step + 1}")
    return config


def _as_new(run: RunDir, name: str, config: Config, overridden: bool) -> RunDir:
    """A new run from `run`'s config (with any --set applied), named `name`."""
    try:
        new = continuation.fork_run(run, name)
    except ValueError as exc:
        raise UserError(f"--as-new: {exc}") from None
    if overridden:
        save_config(config, new.config)
    print(f"New run {new.name} from the config of {run.name} ({new.root})")
    return new


def _detach(run: RunDir, multi: bool = False, quiet: bool = False) -> int:
    """Start the trainer in its own session: it outlives this shell, the SSH login and tmux. `multi`: the
    launcher of several processes (trainer/multi.py, torchrun) instead of the one trainer process."""
    log = open_run_log(run)  # owner-only, like the run folder
    entry = "tuitrain.trainer.multi" if multi else "tuitrain.runs.trainer_process"  # trainer.main, libraries quieted
    proc = subprocess.Popen(
        [sys.executable, "-m", entry, str(run.root)],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        cwd=run.root, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    # Now, not once the trainer has imported torch (seconds later): `tuitrain runs` says "starting" at once.
    write_pidfile(run.pidfile, proc.pid)
    if not quiet:
        print(f"Started the trainer of {run.name} (pid {proc.pid}); log: {run.log}")
        print(f"Follow it: tuitrain attach {run.name}    state: tuitrain runs")
    return 0
