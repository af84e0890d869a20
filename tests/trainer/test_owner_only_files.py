"""The detached trainer writes with umask 077: everything in a run folder is owner-only, its log too."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import pytest

from tests.trainer.conftest import make_dataset
from tuitrain.runs import RunDir, RunState, run_status


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.slow
def test_a_detached_trainer_writes_only_owner_only_files(cli, workspace: Path, tmp_path: Path, usual_umask: None,  # type: ignore[no-untyped-def]
                                                         tiny_model) -> None:
    data = make_dataset(tmp_path / "data", count=2)
    sets = ("data.resolution=64", "training.batch_size=2", "lora.rank=4", "lora.alpha=4", "training.epochs=2",
            "training.lr_warmup_steps=0", "sampling.every_epochs=1", "sampling.steps=2", "saving.every_epochs=1",
            "saving.backup_every_steps=1")
    made = cli("new", "fae", "--preset", "sd15-lora", "--data", str(data), "--base", str(tiny_model("sd15")),
               *(a for s in sets for a in ("--set", s)))
    assert made.returncode == 0, made.stderr
    run = RunDir(workspace / "fae")
    started = cli("train", "fae", "--detach")
    assert started.returncode == 0, started.stderr
    deadline = time.monotonic() + 240
    while run_status(run).state in (RunState.NEW, RunState.RUNNING) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert run_status(run).state is RunState.FINISHED, run.log.read_text()

    written = [run.root, *run.root.rglob("*")]
    assert any(p.suffix == ".safetensors" for p in run.output.iterdir()) and list(run.samples.rglob("*.png"))
    assert {p.relative_to(run.root).as_posix(): oct(mode(p)) for p in written if mode(p) & 0o077} == {}
