"""The loop's hot path: host syncs per optimizer step, prefetched batches, one process's share.

In-process runs of the tiny SD 1.5 model; counted, never timed.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from tests.trainer.conftest import make_dataset
from tuitrain.config import parse_config
from tuitrain.runs import RunDir
from tuitrain.runs.events import iter_events
from tuitrain.trainer.data import shard
from tuitrain.trainer.families import get_adapter
from tuitrain.trainer.families.base import LatentBatch
from tuitrain.trainer.loop import run_training
from tuitrain.trainer.prefetch import Prefetcher, on_device, pinned

# What makes the host wait for the device (a GPU sync), as Python code reaches it.
SYNCS = ("item", "tolist", "cpu", "numpy", "__float__", "__int__", "__bool__")
# torch's own calls are left out: its optimizers read step counters they keep on the host by design.
TORCH = str(Path(torch.__file__).parent)


@pytest.fixture(autouse=True)
def one_thread():  # type: ignore[no-untyped-def]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _config(model: Path, images: Path, **sections: dict[str, Any]):  # type: ignore[no-untyped-def]
    base: dict[str, dict[str, Any]] = {
        "model": {"family": "sd15", "base": str(model)},
        "data": {"resolution": 64, "concepts": [{"path": str(images)}]},
        "training": {"epochs": 2, "batch_size": 1, "learning_rate": 1e-3, "seed": 5, "device": "cpu"},
        "lora": {"rank": 4, "alpha": 4},
        "sampling": {"every_epochs": 0},
        "saving": {"every_epochs": 0},
    }
    for key, values in sections.items():
        base[key] = {**base.get(key, {}), **values}
    return parse_config(base)


def _train(tmp_path: Path, name: str, config, display=None) -> RunDir:  # type: ignore[no-untyped-def]
    run = RunDir(tmp_path / name)
    run.create_folders()
    code = run_training(run, config, tmp_path, display)
    events = [e for _, e in iter_events(run.events)]
    assert code == 0, events[-1]
    return run


def _steps(run: RunDir) -> list[dict]:
    return [e for _, e in iter_events(run.events) if e["type"] == "step"]


def _syncs_per_step(tmp_path: Path, model: Path, data: Path, accumulation: int, monkeypatch) -> list[int]:  # type: ignore[no-untyped-def]
    """Host syncs the training thread made between consecutive step events, once caches are warm."""
    main = threading.get_ident()
    count = {"n": 0}
    for name in SYNCS:
        original = getattr(torch.Tensor, name)

        def counting(self, *args, __original=original, **kwargs):  # type: ignore[no-untyped-def]
            if threading.get_ident() == main and not sys._getframe(1).f_code.co_filename.startswith(TORCH):
                count["n"] += 1
            return __original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counting)
    marks: list[int] = []

    def display(event: dict) -> None:
        if event["type"] == "step":
            marks.append(count["n"])

    config = _config(model, data, training={"epochs": 3, "gradient_accumulation": accumulation})
    _train(tmp_path, f"syncs-{accumulation}", config, display)
    monkeypatch.undo()
    per_epoch = 8 // accumulation
    return [b - a for a, b in zip(marks, marks[1:])][per_epoch:]  # the first epoch fills the caches


def test_the_host_waits_for_the_device_once_a_step_whatever_the_accumulation(tiny_model, tmp_path: Path,
                                                                           monkeypatch) -> None:
    data = make_dataset(tmp_path / "data", count=8)
    model = tiny_model("sd15")
    four = _syncs_per_step(tmp_path, model, data, 4, monkeypatch)
    one = _syncs_per_step(tmp_path, model, data, 1, monkeypatch)
    assert four and one
    assert max(four) <= 2, four  # the old loop: 4 isfinite checks + 4 .item() + float(grad_norm) = 9
    assert max(four) == max(one), (four, one)


def test_a_non_finite_micro_batch_stops_before_the_optimizer_steps(tiny_model, tmp_path: Path, monkeypatch) -> None:
    """Checked once a step on the accumulated loss: the poisoned step never reaches the weights."""
    adapter_class = type(get_adapter("sd15"))
    original = adapter_class.predict
    calls = {"n": 0}

    def poisoned(self, parts, noisy, timesteps, batch):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        out = original(self, parts, noisy, timesteps, batch)
        return out * float("nan") if calls["n"] == 11 else out  # step 6's second micro-batch (of 2)

    monkeypatch.setattr(adapter_class, "predict", poisoned)
    data = make_dataset(tmp_path / "data", count=4)
    config = _config(tiny_model("sd15"), data, training={"epochs": 10, "gradient_accumulation": 2},
                     saving={"backup_every_steps": 2})
    run = RunDir(tmp_path / "nan")
    run.create_folders()
    assert run_training(run, config, tmp_path) == 1
    events = [e for _, e in iter_events(run.events)]
    finished = events[-1]
    assert finished["type"] == "finished" and finished["status"] == "failed"
    assert finished["reason"].startswith("loss is nan at step 6: stopping; the last good backup is intact.")
    assert [e["step"] for e in events if e["type"] == "step"] == [1, 2, 3, 4, 5]
    from tuitrain.trainer.backup import latest_backup

    backup = latest_backup(run.checkpoints)
    assert backup is not None and backup.step == 4
    assert all(torch.isfinite(t).all() for t in backup.weights.values())


def test_prefetched_batches_train_exactly_as_inline_ones(tiny_model, tmp_path: Path) -> None:
    """data.workers only moves work to threads: with every per-sample draw in play (crop jitter, flips,
    tag shuffling, caption dropout; latents encoded anew each visit) the weights are bit-identical."""
    data = make_dataset(tmp_path / "data", count=6, size=(80, 64))
    for i in range(6):
        (data / f"img{i}.txt").write_text(f"red, square, mark {i}, blue")
    model = tiny_model("sd15")
    settings = {"flip": True, "crop_jitter": True, "shuffle_tags": True, "caption_dropout": 0.3}
    finals = {}
    losses = {}
    for workers in (0, 3):
        config = _config(model, data, data={**settings, "workers": workers},
                         training={"epochs": 2, "batch_size": 2, "gradient_accumulation": 2})
        run = _train(tmp_path, f"w{workers}", config)
        finals[workers] = load_file(run.output / f"w{workers}.safetensors")
        losses[workers] = [e["loss"] for e in _steps(run)]
    assert losses[0] and losses[0] == losses[3]
    assert finals[0].keys() == finals[3].keys()
    assert all(torch.equal(finals[0][k], finals[3][k]) for k in finals[0])


def test_one_process_trains_every_batch_and_speaks_for_the_run(tiny_model, tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data", count=4)
    run = _train(tmp_path, "solo", _config(tiny_model("sd15"), data))
    events = [e for _, e in iter_events(run.events)]
    assert [e["step"] for e in events if e["type"] == "step"] == [1, 2, 3, 4, 5, 6, 7, 8]  # 4 images, 2 epochs
    assert any(e["type"] == "saved" and e["final"] for e in events)
    batches = [[3, 1], [0, 2], [2, 2], [1, 0], [3, 3]]
    assert shard(batches, 0, 1) == batches
    halves = shard(batches, 0, 2), shard(batches, 1, 2)
    assert halves == ([[3, 1], [2, 2]], [[0, 2], [1, 0]])  # as many each; the odd one out is dropped


def test_the_prefetcher_keeps_order_and_raises_where_the_item_is() -> None:
    def prepare(n: int) -> int:
        if n == 5:
            raise ValueError("item 5 is broken")
        time.sleep(0.001 * (n % 3))  # finishing out of order
        return n * n

    for workers in (0, 1, 3):
        with Prefetcher(prepare, range(5), workers) as items:
            assert list(items) == [0, 1, 4, 9, 16]
        with Prefetcher(prepare, range(10), workers) as items:
            assert [next(items) for _ in range(5)] == [0, 1, 4, 9, 16]
            with pytest.raises(ValueError, match="item 5 is broken"):
                next(items)
    started: list[int] = []
    prefetcher = Prefetcher(lambda n: started.append(n) or n, iter(range(1000)), 2)
    assert next(prefetcher) == 0
    prefetcher.close()
    assert len(started) <= 4  # only a few ahead, and nothing more once closed
    assert not any(t.name.startswith("tuitrain-data") for t in threading.enumerate())


def test_a_prepared_batch_moves_every_tensor_and_keeps_the_rest() -> None:
    batch = LatentBatch(torch.zeros(2, 4, 8, 8), {}, torch.zeros(2, 6), None)
    same = on_device(batch, torch.device("cpu"))
    assert same.latents is batch.latents and same.size_info is batch.size_info and same.inpaint is None
    if not torch.cuda.is_available():
        return  # pinned memory needs CUDA; the rest of this test runs on a GPU machine
    held, masks = pinned(batch, [torch.ones(1, 8, 8), None])
    assert held.latents.is_pinned() and held.size_info.is_pinned() and masks[0].is_pinned() and masks[1] is None
    moved = on_device(held, torch.device("cuda"))
    assert moved.latents.is_cuda and moved.size_info.is_cuda and moved.conditioning == {}
    torch.testing.assert_close(moved.latents.cpu(), batch.latents)
