"""`tuitrain sample RUN [--save STEP|best|last] [--scale 0.6,0.8,1.0] [--prompt P ...] [--seeds 1,2]`.

A strength sweep of a saved LoRA file on the base model, drawn by a separate trainer-side process
(trainer/resample.py: this command, like the TUI, never imports torch), into the run's
samples/sweep-stepNNNNNN/ and one contact sheet PNG in the run directory.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from tuitrain.cli.common import target
from tuitrain.cli.main import UserError
from tuitrain.runs import RunDir, RunState, run_status
from tuitrain.runs.pick import PickError, find_save
from tuitrain.runs.threads import thread_settings

MAX_SCALES = 16
DEFAULT_SCALES = "0.6,0.8,1.0"


def parse_numbers(text: str, what: str, kind: type = float) -> list:  # type: ignore[type-arg]
    """'0.6,0.8,1' as numbers of `kind`; a bad one is one line naming the option and the value."""
    try:
        values = [kind(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UserError(f"--{what}: expected numbers separated by commas (e.g. 0.6,0.8,1.0), got {text!r}") from None
    if not values or len(values) > MAX_SCALES:
        raise UserError(f"--{what}: expected 1 to {MAX_SCALES} numbers, got {text!r}")
    if kind is float and any(not -4.0 <= v <= 4.0 for v in values):
        raise UserError(f"--{what}: strengths must lie in -4..4, got {text!r}")
    if kind is int and any(not 0 <= v < 2**63 for v in values):
        raise UserError(f"--{what}: seeds must lie in 0..2^63-1, got {text!r}")
    return values


def _default_scales(run: RunDir) -> str:
    """0.6,0.8,1.0 for an adapter; 1 for an embedding, which has no strength."""
    from tuitrain.config import ConfigError, load_config

    try:
        method = load_config(run.config).training.method
    except ConfigError:
        return DEFAULT_SCALES  # the drawing process names what is wrong with the config
    return "1" if method == "embedding" else DEFAULT_SCALES


def run(args: argparse.Namespace) -> int:
    found, _ = target(args)
    if found is None:
        raise UserError(f"{args.target}: not a run (sample draws a run's saves)")
    if run_status(found).state in (RunState.RUNNING, RunState.PAUSED):
        raise UserError(f"run {found.name!r} is training: sample its saves when it has finished or been stopped "
                        "(both would want the GPU)")
    scales = parse_numbers(args.scale or _default_scales(found), "scale")
    seeds = parse_numbers(args.seeds, "seeds", int) if args.seeds else []
    try:
        save = find_save(found, args.save)
    except PickError as exc:
        raise UserError(str(exc)) from None
    command = [sys.executable, "-m", "tuitrain.trainer.resample", str(found.root), "--file", str(save.path),
               "--step", str(save.step), "--scale", ",".join(f"{s:g}" for s in scales)]
    for prompt in args.prompt:
        command += ["--prompt", prompt]
    for seed in seeds:
        command += ["--seed", str(seed)]
    print(f"drawing step {save.step}'s {save.path.name} at strengths {', '.join(f'{s:g}' for s in scales)}",
          flush=True)
    env = dict(os.environ)
    env.update(thread_settings(env))  # as the trainer process: the cores it may use, threads that sleep when idle
    return subprocess.run(command, env=env).returncode
