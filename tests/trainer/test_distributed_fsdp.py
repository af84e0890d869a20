"""distributed.strategy = 'fsdp' on this CPU: a tiny SD 1.5 fine-tune sharded over two processes (torchrun, gloo,
FSDP2) through `tuitrain train`.

Sharding changes where the weights live, not what is trained: the run must equal a one-process run with the same
effective batch (accumulation 2), with an EMA, a text encoder training beside it (under DDP), intermediate saves
(single file and diffusers folder, written by rank 0 from the gathered weights), samples and the eval loss; and a
killed FSDP run must resume on two processes bit for bit from its full-state backup.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.trainer.conftest import make_dataset
from tests.trainer.harness import assert_trained_alike, events, new_run, train, train_cli
from tests.trainer.test_distributed import _final_weights, _launcher_pid, _rank_pids, _steps, _wait
from tuitrain.config import ConfigError, parse_config

SETS = ("data.resolution=64", "training.device=cpu", "training.batch_size=1", "training.learning_rate=1e-3",
        "sampling.every_epochs=0", "saving.every_epochs=0", "saving.dtype=fp32", "data.workers=0",
        "optimizer.name=adamw", "training.gradient_checkpointing=false", "training.lr_warmup_steps=0")
FSDP = ("distributed.processes=2", "distributed.strategy=fsdp")


@pytest.fixture(scope="module")
def sd15(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tuitrain.trainer.tiny import save_tiny_model

    return save_tiny_model("sd15", tmp_path_factory.mktemp("sd15") / "model")


def test_two_fsdp_processes_train_what_one_process_with_accumulation_trains(sd15: Path, tmp_path: Path) -> None:
    """2 FSDP processes x batch 1 = 1 process x batch 1 x accumulation 2: the same losses, gradient norms, backups
    (weights, EMA) and saved files (float tolerance: FSDP reduce-scatters each rank's gradient and averages,
    accumulation adds halves; measured differences ~1e-7, as DDP's, and see assert_trained_alike)."""
    data = make_dataset(tmp_path / "data", count=5)  # 4 to train, 1 held out for the eval loss
    sets = (*SETS, "training.epochs=2", "ema.mode=gpu", "ema.decay=0.5", "finetune.train_text_encoder=true",
            "saving.every_steps=2", "data.validation_split=0.2", "sampling.every_steps=3", "sampling.steps=2",
            "evaluation.every_steps=3",
            "data.cache_text_embeddings=false")
    one = new_run("one", sd15, data, *sets, "training.gradient_accumulation=2", preset="sd15-finetune",
                  where=tmp_path)
    assert train(one) == 0, events(one)[-1]
    two = new_run("two", sd15, data, *sets, *FSDP, preset="sd15-finetune", where=tmp_path)
    done = train_cli(two, cwd=tmp_path, timeout=900)
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-2000:])
    out = done.stdout + done.stderr
    assert "FSDP: the unet is sharded over 2 processes" in out
    assert events(two, "finished")[-1]["status"] == "completed"

    a, b = _steps(two), _steps(one)
    assert [e["step"] for e in a] == [e["step"] for e in b] == [1, 2, 3, 4]
    torch.testing.assert_close([e["loss"] for e in a], [e["loss"] for e in b], rtol=1e-5, atol=1e-7)
    torch.testing.assert_close([e["grad_norm"] for e in a], [e["grad_norm"] for e in b], rtol=1e-4, atol=1e-7)
    # Rank 0 wrote everything from the gathered weights: the intermediate save (single file), the final's
    # single file and diffusers folder, the samples, and the eval loss at each save and every 3 steps.
    assert [e["step"] for e in events(two, "sample")] == [e["step"] for e in events(one, "sample")] == [3]
    evals_a, evals_b = events(two, "eval"), events(one, "eval")
    assert [e["step"] for e in evals_a] == [e["step"] for e in evals_b] == [2, 3, 4]
    torch.testing.assert_close([e["loss"] for e in evals_a], [e["loss"] for e in evals_b], rtol=1e-4, atol=1e-6)
    worst = {}
    for name in ("step000002.safetensors", ".safetensors"):
        mine, theirs = (load_file(run.output / f"{run.name}{'-' if name[0] == 's' else ''}{name}") for run in (two, one))
        worst[name] = assert_trained_alike(mine, theirs, learning_rate=1e-3, steps=4)
    for part in ("unet", "text_encoder"):
        folder = "{}-diffusers/" + part + "/" + ("diffusion_pytorch_model" if part == "unet" else "model") + ".safetensors"
        mine, theirs = (load_file(run.output / folder.format(run.name)) for run in (two, one))
        worst[part] = assert_trained_alike(mine, theirs, learning_rate=1e-3, steps=4)
    worst["backup"] = assert_trained_alike(_final_weights(two), _final_weights(one), learning_rate=1e-3, steps=4)
    print("largest differences, 2 FSDP processes vs 1 process:", worst)


def test_a_killed_fsdp_run_resumes_on_two_processes_bit_for_bit(sd15: Path, tmp_path: Path) -> None:
    """The backup holds the full weights, AdamW state (by parameter name) and EMA; every rank shards them again.
    A resume with the DDP strategy is refused in one line (its optimizer state is keyed differently)."""
    data = make_dataset(tmp_path / "data", count=4)
    sets = (*SETS, *FSDP, "training.epochs=30", "ema.mode=gpu", "ema.decay=0.9", "saving.backup_every_steps=3",
            "finetune.single_file=false")
    whole = new_run("whole", sd15, data, *sets, preset="sd15-finetune", where=tmp_path)
    assert train_cli(whole, cwd=tmp_path, timeout=900).returncode == 0

    cut = new_run("cut", sd15, data, *sets, preset="sd15-finetune", where=tmp_path)
    started = train_cli(cut, "--detach", cwd=tmp_path)
    launcher = _launcher_pid(cut, started.stdout)
    _wait(lambda: any(e["step"] >= 9 for e in events(cut, "backup")), what="the backup of step 9")
    ranks = _rank_pids(launcher)
    os.killpg(os.getpgid(launcher), signal.SIGKILL)
    for pid in ranks.values():
        os.kill(pid, signal.SIGKILL)
    _wait(lambda: not any(Path(f"/proc/{p}").exists() for p in (launcher, *ranks.values())), what="all to die")
    time.sleep(1.0)

    ddp = train_cli(cut, "--set", "distributed.strategy=ddp", cwd=tmp_path, timeout=900)
    assert ddp.returncode != 0
    reason = events(cut, "finished")[-1]["reason"]
    assert reason.startswith("distributed.strategy: backup step-") and "made with 'fsdp'" in reason, reason

    again = train_cli(cut, "--set", "distributed.strategy=fsdp", cwd=tmp_path, timeout=900)
    assert again.returncode == 0, (again.stdout[-2000:], again.stderr[-2000:])
    assert any("resumed from step-" in e.get("message", "") for e in events(cut, "log"))
    a, b = _final_weights(whole), _final_weights(cut)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    pa, pb = (load_file(run.output / f"{run.name}-diffusers/unet/diffusion_pytorch_model.safetensors")
              for run in (whole, cut))
    assert pa.keys() == pb.keys() and all(torch.equal(pa[k], pb[k]) for k in pa)


@pytest.mark.parametrize(("table", "message"), [
    ({"training": {"method": "lora"}}, "distributed.strategy: 'fsdp' shards a full fine-tune's weights; a lora run"),
    ({"training": {"method": "finetune"}, "optimizer": {"name": "prodigy"}}, "optimizer.name: 'prodigy' is not used"),
    ({"training": {"method": "finetune", "mixed_precision": "fp16"}}, "training.mixed_precision: fp16"),
    ({"training": {"method": "finetune"}, "performance": {"compile": "blocks"}}, "performance.compile: compiling"),
    ({"training": {"method": "finetune"}, "performance": {"channels_last": "on"}}, "performance.channels_last"),
    ({"training": {"method": "finetune"}, "ema": {"mode": "cpu"}}, "ema.mode: 'cpu'"),
])
def test_what_fsdp_does_not_take_is_refused_in_one_line(table: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({**table, "distributed": {"processes": 2, "strategy": "fsdp"}})
    assert message in str(err.value) and "\n" not in str(err.value).strip()
    parse_config({**table, "distributed": {"processes": 1, "strategy": "fsdp"}})  # one process: nothing to shard
