"""The trainer's thread settings (runs/threads.py): the cores it may use, capped; the user's own values win."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tuitrain.runs import threads


def test_threads_follow_the_cpu_affinity_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    env: dict[str, str] = {}
    assert threads.limit_threads(env) == 3
    assert env == {"OMP_NUM_THREADS": "3", "MKL_NUM_THREADS": "3", "OPENBLAS_NUM_THREADS": "3",
                   "OMP_WAIT_POLICY": "PASSIVE"}
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    assert threads.limit_threads({}) == threads.MAX_THREADS


def test_what_the_user_set_wins() -> None:
    env = {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "ACTIVE"}
    assert threads.limit_threads(env) == 1
    assert env["OMP_WAIT_POLICY"] == "ACTIVE" and env["OMP_NUM_THREADS"] == "1"
    # BLAS follows the user's OpenMP count: another count sums in another order, and a run resumed in
    # a process set up this way must match the uninterrupted one bit for bit.
    assert env["MKL_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == "1"


def test_the_foreground_trainer_sets_them_before_torch_loads() -> None:
    """`train` and `demo --headless` train in the CLI's process: torch must find the settings there."""
    code = (
        "import os, sys\n"
        "from tuitrain.runs.threads import limit_threads\n"
        "limit_threads()\n"
        "import torch\n"
        "print(torch.get_num_threads(), os.environ['OMP_WAIT_POLICY'])\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in (*threads.THREAD_VARIABLES, "OMP_WAIT_POLICY")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=True)
    expected = min(len(os.sched_getaffinity(0)), threads.MAX_THREADS)
    assert out.stdout.split() == [str(expected), "PASSIVE"]
