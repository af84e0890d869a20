"""The kill-and-resume check every method's tests share: kill a trainer mid-run, train again,
and the result must equal an uninterrupted run's bit for bit.

Once per method (LoRA, embedding, fine-tune) as a user meets it: SIGKILL a detached trainer
(`tuitrain train --detach`), resume with `tuitrain train` (kill_mid_run, resume_matches).
The variants of a method (EMA, random inpainting masks, LoHa) check what they add to the
state in this process: crash_mid_run stops run_training dead after a step, as SIGKILL would
(no handler, no final save, no "finished"), and the resume trains in-process. The
uninterrupted reference trains in-process (harness.train); one torch thread everywhere."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from tests.trainer.harness import events as _events
from tests.trainer.harness import train, train_cli
from tuitrain.runs import RunDir, RunState, run_status


def kill_mid_run(cli: Any, run: RunDir, kill_range: tuple[int, int], timeout: float = 120) -> int:
    """Start `run` detached, SIGKILL its trainer once it passed a random step in `kill_range`;
    returns the last step it reached (it may pass the chosen one before the signal lands)."""
    assert cli("train", run.name, "--detach").returncode == 0
    kill_at = random.Random().randint(*kill_range)
    deadline, pid = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        events = _events(run)
        pid = next((e["pid"] for e in events if e["type"] == "started"), pid)
        if any(e["type"] == "step" and e["step"] >= kill_at for e in events):
            break
        time.sleep(0.02)
    assert pid is not None, f"the trainer never started; its log: {run.log.read_text()[-2000:] if run.log.exists() else ''}"
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.3)
    assert run_status(run).state is RunState.FAILED  # a dead trainer is never "running"
    assert not (run.output / f"{run.name}.safetensors").exists()  # no final save from a killed run
    return max(e["step"] for e in _events(run) if e["type"] == "step")


class Crash(BaseException):
    """A trainer's sudden death in this process: not an Exception, so run_training records no failure for it."""


def crash_mid_run(run: RunDir, crash_range: tuple[int, int], event: str = "step") -> int:
    """Train `run` in this process and stop it dead at its first `event` ("step", "saved", ...) of a random
    step in `crash_range` (nothing after that event runs: no further save or backup, no "finished"); returns
    the last step it trained. A run crashed here resumes in this process too: its PID file names this one."""
    from tuitrain.config import load_config
    from tuitrain.trainer.loop import run_training

    crash_at = random.Random().randint(*crash_range)

    def display(emitted: dict[str, Any]) -> None:
        if emitted["type"] == event and emitted["step"] >= crash_at:
            raise Crash

    with pytest.raises(Crash):
        run_training(run, load_config(run.config), run.root, display)
    assert not [e for e in _events(run) if e["type"] == "finished"]  # it never finished
    assert not (run.output / f"{run.name}.safetensors").exists()  # no final save from a dead run
    return max(e["step"] for e in _events(run) if e["type"] == "step")


def resume_matches(run: RunDir, reference: Path, last_step: int, backup_every: int,
                   in_process: bool = False) -> dict[str, torch.Tensor]:
    """Train `run` again (it resumes from its newest backup): with `tuitrain train`, or in this process
    after crash_mid_run (`in_process`); its final file must equal `reference`."""
    if in_process:
        assert train(run) == 0, _events(run)[-1]
    else:
        out = train_cli(run)
        assert out.returncode == 0, out.stderr[-3000:]
    resumed = [e for e in _events(run) if e["type"] == "started"][-1]["resumed_from"]
    assert resumed and resumed % backup_every == 0 and resumed <= last_step, (resumed, last_step)
    result, expected = load_file(run.output / f"{run.name}.safetensors"), load_file(reference)
    assert result.keys() == expected.keys()
    differ = [k for k in expected if not torch.equal(result[k], expected[k])]
    assert not differ, differ[:3]
    return result
