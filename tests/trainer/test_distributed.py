"""One run on two processes (distributed.processes = 2) on this CPU: torchrun, gloo, DDP, through `tuitrain train`.

What one machine can show of multi-GPU training: the processes train one run (rank 0 speaks for it),
their gradients are averaged (the weights stay equal on every rank), two processes with batch 1 train
what one process with gradient_accumulation 2 trains, a rank that is killed ends the run as failed
naming it, a killed run resumes on two processes bit for bit, and a change of process count is refused.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.trainer.conftest import make_dataset
from tests.trainer.harness import assert_trained_alike, events, new_run, train, train_cli
from tuitrain.config import ConfigError, parse_config
from tuitrain.runs import RunDir
from tuitrain.trainer import backup as backups

SETS = ("data.resolution=64", "training.device=cpu", "training.batch_size=1", "lora.rank=4", "lora.alpha=4", "training.learning_rate=1e-3",
        "sampling.every_epochs=0", "saving.every_epochs=0", "saving.dtype=fp32", "data.workers=0")


@pytest.fixture(scope="module")
def sd15(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tuitrain.trainer.tiny import save_tiny_model

    return save_tiny_model("sd15", tmp_path_factory.mktemp("sd15") / "model")


def _steps(run: RunDir) -> list[dict]:
    return events(run, "step")


def _final_weights(run: RunDir) -> dict[str, torch.Tensor]:
    found = backups.latest_backup(run.checkpoints)
    assert found is not None
    return found.weights


@pytest.mark.parametrize("method", ["lora", "finetune"])
def test_two_processes_train_what_one_process_with_accumulation_trains(method: str, sd15: Path,
                                                                       tmp_path: Path) -> None:
    """2 processes x batch 1 = 1 process x batch 1 x accumulation 2, step for step: the same losses and the
    same weights (float tolerance: DDP averages the two gradients, accumulation adds halves; measured
    differences ~1e-7)."""
    data = make_dataset(tmp_path / "data", count=4)
    preset = "sd15-finetune" if method == "finetune" else "sd15-lora"
    extra = ("finetune.single_file=false", "optimizer.name=adamw") if method == "finetune" else ()
    one = new_run("one", sd15, data, *SETS, *extra, "training.epochs=2", "training.gradient_accumulation=2",
                  preset=preset, where=tmp_path)
    assert train(one) == 0, events(one)[-1]
    two = new_run("two", sd15, data, *SETS, *extra, "training.epochs=2", "distributed.processes=2",
                  preset=preset, where=tmp_path)
    done = train_cli(two, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "training with 2 processes: 1 x 1 x 2 = 2 images per step" in done.stdout + done.stderr
    assert [e["step"] for e in _steps(two)] == [e["step"] for e in _steps(one)] == [1, 2, 3, 4]
    torch.testing.assert_close([e["loss"] for e in _steps(two)], [e["loss"] for e in _steps(one)],
                               rtol=1e-5, atol=1e-7)
    assert_trained_alike(_final_weights(two), _final_weights(one), learning_rate=1e-3, steps=4)
    assert not list(two.root.glob("rank-*-error.txt"))
    assert len(events(two, "started")) == 1 and events(two, "finished")[-1]["status"] == "completed"
    started = [events(run, "started")[0] for run in (one, two)]  # the dashboard's batch row reads these
    assert [(e["batch_size"], e["gradient_accumulation"], e["processes"], e["effective_batch"]) for e in started] == [
        (1, 2, 1, 2), (1, 1, 2, 2)]


def _rank_pids(launcher: int) -> dict[int, int]:
    """The training processes under a launcher, by their RANK (read from /proc)."""
    found: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if f"TUITRAIN_LAUNCHER={launcher}".encode() in environ:
            ranks = [v for v in environ if v.startswith(b"RANK=")]
            if ranks and "tuitrain" in (entry / "cmdline").read_bytes().decode(errors="replace") and stat:
                found[int(ranks[0][5:])] = int(entry.name)
    return found


def _wait(predicate, timeout: float = 300.0, what: str = "") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _launcher_pid(run: RunDir, out: str) -> int:
    import re

    return int(re.search(r"\(pid (\d+)\)", out).group(1))  # type: ignore[union-attr]


def test_a_killed_rank_fails_the_run_naming_it_and_nothing_hangs(sd15: Path, tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data", count=4)
    run = new_run("k", sd15, data, *SETS, "training.epochs=500", "distributed.processes=2", where=tmp_path)
    started = train_cli(run, "--detach", cwd=tmp_path)
    assert started.returncode == 0, started.stderr
    launcher = _launcher_pid(run, started.stdout)
    _wait(lambda: len(_steps(run)) >= 3, what="three steps")
    ranks = _rank_pids(launcher)
    assert sorted(ranks) == [0, 1], ranks
    os.kill(ranks[1], signal.SIGKILL)
    killed_at = time.monotonic()
    _wait(lambda: events(run, "finished"), timeout=120, what="the run to finish")
    finished = events(run, "finished")[-1]
    assert finished["status"] == "failed"
    assert "rank 1" in finished["reason"] or "died" in finished["reason"], finished["reason"]
    assert "\n" not in finished["reason"]
    _wait(lambda: not any(Path(f"/proc/{pid}").exists() for pid in (launcher, *ranks.values())), timeout=60,
          what="every process to exit")
    assert time.monotonic() - killed_at < 90


def test_a_killed_run_resumes_on_two_processes_bit_for_bit_and_not_on_one(sd15: Path, tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data", count=4)
    sets = (*SETS, "training.epochs=40", "distributed.processes=2", "saving.backup_every_steps=3")
    whole = new_run("whole", sd15, data, *sets, where=tmp_path)
    assert train_cli(whole, cwd=tmp_path).returncode == 0
    memory = events(whole, "memory")  # every 10 steps, with each process's own figures
    assert memory and all(len(e["ranks"]) == 2 and all(r["rss"] > 0 for r in e["ranks"]) for e in memory)

    cut = new_run("cut", sd15, data, *sets, where=tmp_path)
    started = train_cli(cut, "--detach", cwd=tmp_path)
    launcher = _launcher_pid(cut, started.stdout)
    _wait(lambda: any(e["step"] >= 9 for e in events(cut, "backup")), what="the backup of step 9")
    ranks = _rank_pids(launcher)  # torchrun starts each rank in its own session
    os.killpg(os.getpgid(launcher), signal.SIGKILL)  # the launcher and torchrun, then both ranks, mid-step
    for pid in ranks.values():
        os.kill(pid, signal.SIGKILL)
    _wait(lambda: not any(Path(f"/proc/{p}").exists() for p in (launcher, *ranks.values())), what="all to die")
    time.sleep(1.0)

    one = train_cli(cut, "--set", "distributed.processes=1", cwd=tmp_path)
    assert one.returncode != 0, (one.stdout[-1500:], one.stderr[-1500:], events(cut)[-3:])
    assert events(cut, "finished"), (one.stdout[-1500:], one.stderr[-1500:], events(cut)[-3:])
    reason = events(cut, "finished")[-1]["reason"]
    assert reason, (one.stdout[-1500:], one.stderr[-1500:], events(cut)[-4:])
    assert reason.startswith("distributed.processes: backup step-") and "made by 2 process(es)" in reason

    again = train_cli(cut, "--set", "distributed.processes=2", cwd=tmp_path)  # the refused --set was kept
    assert again.returncode == 0, again.stderr[-2000:]
    a, b = _final_weights(whole), _final_weights(cut)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert load_file(whole.output / "whole.safetensors").keys() == load_file(cut.output / "cut.safetensors").keys()


@pytest.mark.parametrize(("table", "message"), [
    ({"distributed": {"processes": 3, "gpus": "0,1"}}, "distributed.processes: 3, but distributed.gpus names 2 GPUs"),
    ({"distributed": {"gpus": "0;1"}}, "must be GPU numbers separated by commas"),
    ({"distributed": {"processes": 2}, "training": {"device": "cuda:1"}}, "training.device: \"cuda:1\" picks one GPU"),
    ({"distributed": {"processes": 2}, "training": {"text_encoder_max_steps": 5},
      "lora": {"train_text_encoder": True}}, "training.text_encoder_max_steps: stopping the text encoders mid-run"),
])
def test_distributed_config_mistakes_are_named(table: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(table)
    assert message in str(err.value)


def test_the_preflight_counts_the_effective_batch(sd15: Path, tmp_path: Path, capsys) -> None:
    """`tuitrain check` sees each step take batch x accumulation x processes images, as the trainer does."""
    from tuitrain.cli.main import main

    data = make_dataset(tmp_path / "data", count=8)
    run = new_run("p", sd15, data, *SETS, "training.epochs=1", "distributed.processes=2", where=tmp_path)
    capsys.readouterr()
    main(["check", str(run.config), "--json"])
    report = json.loads(capsys.readouterr().out)["data"]
    assert report["settings"]["num_gpus"] == 2 and report["steps"]["samples_per_step"] == 2
    assert report["steps"]["total"] == 4  # 8 images, 2 per step


def test_the_preflight_counts_each_process_batch_from_one_bucket_as_the_trainer(sd15: Path, tmp_path: Path,
                                                                                capsys) -> None:
    """Two buckets of 3 images, batch 1, 2 processes: the trainer forms 6 one-bucket batches and gives each
    process 3 (data.shard), so 3 steps per epoch and both buckets train. The check counted batches of
    batch x processes = 2 per bucket (1 + 1: 2 steps); it must count what the trainer's own functions give."""
    from PIL import Image

    from tuitrain.cli.main import main
    from tuitrain.config import load_config
    from tuitrain.trainer.data import TrainingData, epoch_batches, shard

    data = make_dataset(tmp_path / "data", count=3)
    for i in range(3):  # a second bucket (80x48 at resolution 64, bucket_step 16)
        Image.new("RGB", (100, 60), (30, 40 * i, 200)).save(data / f"wide{i}.png")
        (data / f"wide{i}.txt").write_text("a wide blue picture")
    run = new_run("b", sd15, data, *SETS, "training.epochs=1", "data.bucket_step=16", "distributed.processes=2",
                  where=tmp_path)
    capsys.readouterr()
    main(["check", str(run.config), "--json"])
    report = json.loads(capsys.readouterr().out)["data"]
    assert len(report["buckets"]) == 2 and not any(i["never_trains"] for i in report["bucket_issues"])
    config = load_config(run.config)
    samples = TrainingData(config, run.config.parent)
    batches = epoch_batches(samples.samples, samples.repeats, 1, config.training.seed, 0)
    assert [len(shard(batches, rank, 2)) for rank in (0, 1)] == [3, 3]
    assert report["steps"]["per_epoch"] == 3 and report["steps"]["samples_per_step"] == 2


def test_text_encoders_train_on_two_processes_with_an_eval_loss(tmp_path: Path) -> None:
    """SDXL reads CLIP-L's second-to-last layer, so the LoRA on its last layer gets no gradient: DDP must be
    told (found by review: "Expected to have finished reduction" at step 2). The eval loss, scored by rank 0
    alone, must not run the DDP-wrapped encoders (a collective the other rank never joins)."""
    from tuitrain.trainer.tiny import save_tiny_model

    model = save_tiny_model("sdxl", tmp_path / "model")
    data = make_dataset(tmp_path / "data", count=6)
    run = new_run("te", model, data, *SETS, "training.epochs=2", "distributed.processes=2",
                  "lora.train_text_encoder=true", "data.validation_split=0.2", "saving.every_steps=2",
                  "data.cache_text_embeddings=false", preset="sdxl-lora", where=tmp_path)
    done = train_cli(run, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, (done.stdout[-1500:], done.stderr[-1500:])
    assert events(run, "finished")[-1]["status"] == "completed"
    scores = events(run, "eval")
    assert scores and all(isinstance(e["loss"], float) for e in scores), scores[:2]


def test_gpu_utilisation_is_left_out_when_nvml_cannot_tell(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch.cuda.utilization reads NVML through nvidia-ml-py: missing, or refusing (MIG), means no figure,
    never a failed run."""
    from tuitrain.trainer.distributed import gpu_utilization

    def missing(device: object) -> int:
        raise ModuleNotFoundError("nvidia-ml-py does not seem to be installed or it can't be imported.")

    monkeypatch.setattr(torch.cuda, "utilization", missing)
    assert gpu_utilization(torch.device("cuda")) is None
    monkeypatch.setattr(torch.cuda, "utilization", lambda device: 57)
    assert gpu_utilization(torch.device("cuda")) == 57
