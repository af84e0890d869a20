"""`tuitrain train RUN|CONFIG [--detach]`: run the trainer in the foreground, or start it in the background.

A config file outside a run directory gets a run of its own in the workspace
(named after the file), so samples, backups and outputs always have a home.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from tuitrain.cli.cmd_check import config_readiness
from tuitrain.cli.common import target, workspace
from tuitrain.cli.main import EXIT_CANNOT_TRAIN, UserError
from tuitrain.config import Config, load_config, save_config
from tuitrain.config.io import resolve_path
from tuitrain.runs import RunDir, RunState, run_status


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
    save_config(_absolute_paths(config, config_path.parent), run.config)
    return run


def run(args: argparse.Namespace) -> int:
    run_dir, config_path = target(args)
    config = load_config(config_path, args.overrides)
    problems = config_readiness(config, config_path.parent)
    if problems:
        for line in problems:
            print(f"cannot train: {line}", file=sys.stderr)
        return EXIT_CANNOT_TRAIN
    if run_dir is None:
        run_dir = _run_for_config(config, config_path, workspace(args))
        print(f"Training {config_path} as run {run_dir.name} ({run_dir.root})")
    else:
        status = run_status(run_dir)
        if status.state in (RunState.RUNNING, RunState.PAUSED):
            raise UserError(f"run {run_dir.name} is already {status.state.value}: tuitrain attach {run_dir.name}")
        if args.overrides:
            save_config(config, run_dir.config)  # the run's snapshot is what it trains (and resumes) with
    if args.detach:
        return _detach(run_dir)
    from tuitrain.cli.train_display import RichDisplay
    from tuitrain.trainer.loop import run_training

    with RichDisplay() as display:
        return run_training(run_dir, load_config(run_dir.config), run_dir.root, display)


def _detach(run: RunDir) -> int:
    """Start the trainer in its own session: it outlives this shell, the SSH login and tmux."""
    log = open(run.log, "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tuitrain.trainer.main", str(run.root)],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        cwd=run.root, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    print(f"Started the trainer of {run.name} (pid {proc.pid}); log: {run.log}")
    print(f"Follow it: tuitrain attach {run.name}    state: tuitrain runs")
    return 0
