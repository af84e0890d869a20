"""One way to make and train runs in the trainer tests.

In-process (`run_training`, as the trainer process itself calls it) for every test that
only needs what a run leaves behind: its files, its events, its return code. A process
(`tuitrain train`, `--detach`) only where the process is what the test is about: the
CLI's own checks and messages, the detached trainer and its socket, and one SIGKILL and
resume per method (resume.py; its variants die and resume in-process, resume.crash_mid_run).
Torch runs with one thread in both (tests/conftest.py, tests/trainer/conftest.py): tiny
models gain nothing from more, and on a busy machine spinning threads made steps take
seconds instead of ~0.1 s.
"""

from __future__ import annotations

import contextlib
import copy
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tuitrain.config import load_config, parse_config
from tuitrain.runs import RunDir
from tuitrain.runs.create import create_run
from tuitrain.runs.events import iter_events

# The tiny LoRA run most in-process tests start from (4-image data sets: 2 steps an epoch).
BASE: dict[str, dict[str, Any]] = {
    "training": {"epochs": 2, "batch_size": 2, "learning_rate": 1e-3, "seed": 3},
    "lora": {"rank": 4, "alpha": 4},
    "sampling": {"every_epochs": 0},
    "saving": {"every_epochs": 0},
}


def merged(base: dict[str, Any], sections: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """`base` with each section's keys replaced by those given (one level deep, like `--set`)."""
    table = copy.deepcopy(base)
    for key, values in sections.items():
        table[key] = {**table.get(key, {}), **values}
    return table


def config_table(model: Path, data: Path, /, defaults: dict[str, Any] | None = None,
                 **sections: dict[str, Any]) -> dict[str, Any]:
    """A config table for an sd15 run on `model` and `data` at 64 px: `defaults` (BASE), then `sections`
    (the model and data arguments are positional only: `model=` and `data=` are sections)."""
    table = {"model": {"family": "sd15", "base": str(model)},
             "data": {"resolution": 64, "concepts": [{"path": str(data)}]}}
    return merged(merged(table, BASE if defaults is None else defaults), sections)


def train_config(root: Path, model: Path, data: Path, /, name: str = "r", defaults: dict[str, Any] | None = None,
                 **sections: dict[str, Any]) -> tuple[RunDir, int]:
    """Make run `root/name` from config_table(...) and train it in this process: (run, exit code)."""
    from tuitrain.trainer.loop import run_training

    config = parse_config(config_table(model, data, defaults, **sections))
    run = RunDir(root / name)
    run.create_folders()
    return run, run_training(run, config, root)


# `--set`s of the tiny sd15 LoRA runs made like `tuitrain new --preset sd15-lora` (8-image data sets: 4 steps an epoch).
LORA_SETS = ("data.resolution=64", "training.batch_size=2", "lora.rank=4", "lora.alpha=4",
             "training.learning_rate=1e-3", "training.lr_warmup_steps=0", "sampling.every_epochs=0",
             "saving.every_epochs=0")


def workspace() -> Path:
    """This test's workspace (tests/conftest.py's isolated_env)."""
    return Path(os.environ["TUITRAIN_WORKSPACE"])


def new_run(name: str, model: Path, data: Path, *sets: str, preset: str = "sd15-lora",
            where: Path | None = None) -> RunDir:
    """What `tuitrain new NAME --preset P --data D --base M --set ...` makes, made in this process."""
    return create_run(where or workspace(), name, preset, str(data), str(model), sets)


def train(run: RunDir) -> int:
    """Train `run` (new, or killed: it resumes) in this process, as the trainer process does: its exit code."""
    from tuitrain.trainer.loop import run_training

    return run_training(run, load_config(run.config), run.root)


def train_cli(run: RunDir | str, *extra: str, timeout: float = 900, cwd: Path | None = None,
              ) -> subprocess.CompletedProcess[str]:
    """`tuitrain train RUN ...` as a real process: for tests of the command itself. The limit only guards a hang."""
    name = run.name if isinstance(run, RunDir) else run
    return subprocess.run([sys.executable, "-m", "tuitrain", "train", name, *extra], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


def events(run: RunDir, kind: str | None = None) -> list[dict[str, Any]]:
    """The run's events, or only those of type `kind`."""
    return [e for _, e in iter_events(run.events) if kind is None or e["type"] == kind]


def copy_run(run: RunDir, where: Path | None = None) -> RunDir:
    """A private copy of a shared (session) run, same name, in `where` (this test's workspace)."""
    import stat

    def sockets(folder: str, names: list[str]) -> list[str]:  # a trainer's socket is not part of its history
        return [n for n in names if stat.S_ISSOCK(os.lstat(os.path.join(folder, n)).st_mode)]

    target = RunDir((where or workspace()) / run.name)
    shutil.copytree(run.root, target.root, symlinks=True, ignore=sockets)
    return target


@contextlib.contextmanager
def trainer_for(root: Path, model: Path, data: Path, /, name: str = "t", defaults: dict[str, Any] | None = None,
                **sections: dict[str, Any]) -> Iterator[Any]:
    """A set-up Trainer (model loaded, method in place) in this process, torn down as run_training does."""
    from accelerate.state import AcceleratorState, GradientState

    from tuitrain.trainer.loop import Trainer

    run = RunDir(root / name)
    run.create_folders()
    trainer = Trainer(run, parse_config(config_table(model, data, defaults, **sections)), root, listen=False)
    try:
        trainer.setup()
        yield trainer
    finally:
        trainer.control.close()
        AcceleratorState._reset_state(reset_partial_state=True)
        GradientState._reset_state()
