"""Several machines, as far as one machine can show it: docs/multi-gpu.md's recipe (torchrun on each
machine, --nnodes 2 --node-rank R, c10d rendezvous, the run folder on storage both see) run as two
torchrun agents on this machine, one process each, gloo over loopback.

What is simulated: the second machine (a second agent with its own node rank and LOCAL_RANK 0, as on a
real second machine) and the shared storage (one folder). What is not: a network between machines, NCCL.
The run trains what one process with gradient accumulation 2 trains, and rank 0 alone speaks for it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.trainer.conftest import make_dataset
from tests.trainer.harness import assert_trained_alike, events, new_run, train
from tests.trainer.test_distributed import SETS, _final_weights


@pytest.fixture(scope="module")
def sd15(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tuitrain.trainer.tiny import save_tiny_model

    return save_tiny_model("sd15", tmp_path_factory.mktemp("sd15") / "model")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_nodes_of_one_process_train_one_run_as_the_docs_say(sd15: Path, tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data", count=4)
    one = new_run("one", sd15, data, *SETS, "training.epochs=2", "training.gradient_accumulation=2", where=tmp_path)
    assert train(one) == 0, events(one)[-1]
    run = new_run("nodes", sd15, data, *SETS, "training.epochs=2", "distributed.processes=2", where=tmp_path)

    endpoint = f"127.0.0.1:{_free_port()}"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    agents = [
        subprocess.Popen(
            [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", f"--node-rank={node}",
             "--nproc-per-node=1", "--rdzv-backend=c10d", f"--rdzv-endpoint={endpoint}", "--rdzv-id=nodes",
             "--max-restarts=0", "-m", "tuitrain.runs.trainer_process", str(run.root)],
            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for node in (0, 1)
    ]
    outputs = [agent.communicate(timeout=600)[0] for agent in agents]
    assert [agent.returncode for agent in agents] == [0, 0], "\n".join(o[-2000:] for o in outputs)

    steps = events(run, "step")
    assert [e["step"] for e in steps] == [1, 2, 3, 4]  # one voice: rank 0's events only
    torch.testing.assert_close([e["loss"] for e in steps], [e["loss"] for e in events(one, "step")],
                               rtol=1e-5, atol=1e-7)
    started = events(run, "started")
    assert len(started) == 1 and started[0]["processes"] == 2
    assert events(run, "finished")[-1]["status"] == "completed"
    assert_trained_alike(_final_weights(run), _final_weights(one), learning_rate=1e-3, steps=4)
    assert (run.output / "nodes.safetensors").is_file()
