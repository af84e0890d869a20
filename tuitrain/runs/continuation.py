"""Training a run that already finished: continue it, or start a new run from its config; never redo it.

A finished run's history is its event log and its output files. Training it again
from step 0 would write a second history over the first (two loss curves on one
axis) and overwrite `output/<name>-step000010.safetensors` and the rest. So a
finished run trains again only as a *continuation*: the config is given more
steps or epochs, the trainer resumes from the backup of the final state (written
at the end of every run, `saving.backup_at_end`), and the history goes on from
that step. The other way is a new run from the same config (a new name).

The rules live here, torch-free, so `tuitrain train`, the dashboard's `t` and the
trainer process itself (which the TUI and --detach start) apply the same ones.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from tuitrain.config import Config
from tuitrain.runs.layout import RunDir, valid_run_name
from tuitrain.runs.state import RunState, last_attempt_status, last_started


@dataclass(frozen=True)
class FinishedRun:
    """What the log says about a run that completed."""

    step: int  # the step it finished at
    total_steps: int | None  # the total it was training to
    steps_per_epoch: int | None
    backup_step: int | None  # the newest whole-looking backup on disk


def finished_run(run: RunDir) -> FinishedRun | None:
    """The finished run's figures, or None when the run did not complete (new, running, stopped, failed).
    A new attempt that is still loading (launched, no event yet) does not hide the finish: it may be the
    continuation asking."""
    status = last_attempt_status(run)
    if status.state != RunState.FINISHED:
        return None
    started = last_started(run) or {}
    spe = started.get("steps_per_epoch")
    return FinishedRun(
        step=status.step or 0,
        total_steps=status.total_steps,
        steps_per_epoch=spe if isinstance(spe, int) and spe > 0 else None,
        backup_step=newest_backup_step(run),
    )


def newest_backup_step(run: RunDir) -> int | None:
    """The step of the newest backup folder with a manifest (the trainer verifies its hashes on load)."""
    steps = []
    for path in run.checkpoints.glob("step-*"):
        digits = path.name.removeprefix("step-")
        if digits.isdigit() and (path / "manifest.json").is_file():
            steps.append(int(digits))
    return max(steps, default=None)


def planned_total(config: Config, info: FinishedRun) -> int | None:
    """The step `config` would train to, with the finished attempt's steps per epoch (None: unknown)."""
    if config.training.max_steps:
        return config.training.max_steps
    if info.steps_per_epoch is None:
        return None
    return config.training.epochs * info.steps_per_epoch


def with_more(config: Config, info: FinishedRun, *, epochs: int = 0, steps: int = 0) -> Config:
    """`config` set to train `epochs` more epochs or `steps` more steps past the finished step."""
    data = config.model_dump()
    training = data["training"]
    if steps:
        training["max_steps"] = info.step + steps
    elif epochs:
        if training["max_steps"]:
            if info.steps_per_epoch is None:
                raise ValueError("the run's log does not say how many steps an epoch has; use more steps instead")
            training["max_steps"] = info.step + epochs * info.steps_per_epoch
        else:
            done = -(-info.step // info.steps_per_epoch) if info.steps_per_epoch else training["epochs"]
            training["epochs"] = done + epochs
    return Config.model_validate(data)


def next_free_name(run: RunDir) -> str:
    """`<run>-2`, `-3`, ...: the first name no folder in the workspace has."""
    n = 2
    while (run.root.parent / f"{run.name}-{n}").exists():
        n += 1
    return f"{run.name}-{n}"


def choices_text(run: RunDir, info: FinishedRun) -> str:
    """The refusal with its two ways forward, for the shell."""
    total = f"/{info.total_steps}" if info.total_steps else ""
    return (
        f"run {run.name} already finished (step {info.step}{total}); training it again from step 0 would "
        f"overwrite its saves and history. Either:\n"
        f"  continue it from step {info.step}:  tuitrain train {run.name} --more-epochs N   (or --more-steps N)\n"
        f"  start a new run from its config:  tuitrain train {run.name} --as-new {next_free_name(run)}"
    )


def continuation_problem(run: RunDir, config: Config) -> str | None:
    """Why training `run` with `config` would not be a clean continuation (None: it would, or the run never finished)."""
    info = finished_run(run)
    if info is None:
        return None
    total = planned_total(config, info)
    if total is None or total <= info.step:
        return choices_text(run, info)
    if info.backup_step != info.step:
        last = f"its newest backup is step {info.backup_step}" if info.backup_step is not None else "it has no backup"
        return (
            f"run {run.name} cannot continue from step {info.step}: {last}, not one of its final state "
            f"(saving.backup_at_end was off, or the backup was removed), so steps would be trained twice. "
            f"Start a new run from its config: tuitrain train {run.name} --as-new {next_free_name(run)}"
        )
    return None


def fork_run(run: RunDir, name: str) -> RunDir:
    """A new run beside `run`, named `name`, with a copy of its config file (comments and all). Never overwrites."""
    if not valid_run_name(name):
        raise ValueError(f"{name!r} is not a run name: letters, digits, '.', '_', '-' (not first), at most 100")
    new = RunDir(run.root.parent / name)
    if new.root.exists():
        raise ValueError(f"{new.root} already exists: pick another name (free: {next_free_name(run)})")
    new.create_folders()
    shutil.copyfile(run.config, new.config)
    return new
