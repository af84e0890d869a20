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



def assert_same_weights(mine: Any, theirs: Any) -> None:
    """`mine` holds `theirs`'s tensors under the same names, bit for bit: what a conversion test claims."""
    import torch

    mine_sd, theirs_sd = mine.state_dict(), theirs.state_dict()
    assert mine_sd.keys() == theirs_sd.keys(), sorted(mine_sd.keys() ^ theirs_sd.keys())[:5]
    differ = [k for k in theirs_sd if not torch.equal(mine_sd[k], theirs_sd[k])]
    assert not differ, f"{len(differ)} of {len(theirs_sd)} tensors differ, first {differ[:3]}"


def assert_outputs_agree(mine: Any, theirs: Any) -> None:
    """Outputs of two models with the same weights (assert_same_weights) agree to float rounding.

    Not bit for bit: on some CPUs (seen on an AMD EPYC host, torch 2.13 CPU) a float kernel takes another path
    when a weight's address has another alignment (a tensor read from a safetensors file sat at 16 or 48 bytes
    mod 64, a fresh one at 8 or 40), and bit-identical weights gave outputs 2.5e-7 apart on values near 1;
    re-allocating both models' weights alike made them bit-equal again. A wrong, missing or transposed tensor
    moves outputs by orders of magnitude more than this tolerance.
    """
    import torch

    torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-5)


def assert_trained_alike(mine: dict[str, Any], theirs: dict[str, Any], learning_rate: float, steps: int) -> float:
    """Weights trained alike by two arrangements (processes, sharding, accumulation): all but 1 in 1,000
    elements within rtol 1e-4 / atol 1e-6 of each other, and every element within learning_rate × steps, the
    most that Adam moves an element at all. Returns the largest difference.

    Why not every element within the tight bound: the arrangements sum the gradient in another order, so each
    gradient element differs by float rounding (~1e-7 of its parts). Where an element's parts nearly cancel, that
    rounding is a large part of the sum, and Adam, which divides a step by the gradient's own running size, turns
    it into a step of up to the learning rate. Measured (FSDP against accumulation, 4 steps at lr 1e-3, an AMD
    EPYC host): 45-51 elements of 0.8-0.9 M off, the largest by 7.7e-5. A wrong
    reduction (a lost rank, a stale shard, another batch) moves most elements, not a few.
    """
    assert mine.keys() == theirs.keys(), sorted(mine.keys() ^ theirs.keys())[:5]
    worst, off, total = 0.0, 0, 0
    for key, want in theirs.items():
        got, want = mine[key].float(), want.float()
        assert got.shape == want.shape, key
        diff = (got - want).abs()
        worst = max(worst, diff.max().item() if diff.numel() else 0.0)
        off += int((diff > 1e-6 + 1e-4 * want.abs()).sum())
        total += want.numel()
        assert diff.numel() == 0 or diff.max().item() <= learning_rate * steps, (key, diff.max().item())
    assert off <= total // 1_000, f"{off} of {total} elements differ by more than rtol 1e-4 / atol 1e-6"
    return worst
