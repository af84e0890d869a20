"""Trainer features, in-process on tiny models: families, caches, failures, stop, samples."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors import safe_open

from tests.trainer.conftest import Reference, make_dataset
from tests.trainer.harness import events as _events
from tests.trainer.harness import train_config


@pytest.mark.parametrize("family", ["sdxl", "sd2"])
def test_other_families_train_and_save_loadable_loras(tiny_model, tmp_path: Path, family: str) -> None:
    from diffusers import DiffusionPipeline

    data = make_dataset(tmp_path / "data", count=4)
    run, code = train_config(tmp_path, tiny_model(family), data, model={"family": family},
                       lora={"rank": 4, "alpha": 2, "train_text_encoder": True})
    assert code == 0, _events(run)[-1]
    started = _events(run, "started")[0]
    assert started["family"] == family and started["total_steps"] == 4
    path = run.output / "r.safetensors"
    with safe_open(path, "pt") as f:
        keys, meta = set(f.keys()), f.metadata()
    prefixes = {k.split("_")[1] for k in keys}
    if family == "sdxl":
        assert {"unet", "te1", "te2"} <= prefixes and meta["ss_base_model_version"] == "sdxl_base_v1-0"
    else:
        assert {"unet", "te"} <= prefixes and meta["ss_v2"] == "True"
        assert meta["modelspec.architecture"].endswith("/lora")
    pipe = DiffusionPipeline.from_pretrained(tiny_model(family), local_files_only=True)
    pipe.load_lora_weights(str(path))  # diffusers' own loader takes it
    assert pipe.get_active_adapters()


def test_caches_are_reused_and_a_change_recaches_only_what_changed(tiny_model, tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data", count=4)
    model = tiny_model("sd15")
    run, code = train_config(tmp_path, model, data)
    assert code == 0
    latents = lambda: sorted((run.cache / "latents").rglob("*.safetensors"))  # noqa: E731
    texts = lambda: sorted((run.cache / "text").rglob("*.safetensors"))  # noqa: E731
    first_latents, first_texts = latents(), texts()
    assert len(first_latents) == 4 and len(first_texts) == 1  # one caption shared by all four

    def forget_training() -> None:
        """The run's history, saves and backups go; its caches stay (a finished run is never retrained)."""
        import shutil

        for folder in (run.output, run.checkpoints):
            shutil.rmtree(folder)
            folder.mkdir()
        (run.root / "events.jsonl").unlink()

    forget_training()
    _, code = train_config(tmp_path, model, data)  # unchanged data: nothing new is encoded
    assert code == 0 and latents() == first_latents and texts() == first_texts

    # a changed image and a changed caption: exactly one new latent and one new text entry
    Image.new("RGB", (64, 64), (0, 200, 0)).save(data / "img0.png")
    (data / "img1.txt").write_text("a green square")
    forget_training()
    _, code = train_config(tmp_path, model, data)
    assert code == 0
    assert len(set(latents()) - set(first_latents)) == 1
    assert len(set(texts()) - set(first_texts)) == 1

    # a different resolution (other buckets) re-encodes every image
    forget_training()
    _, code = train_config(tmp_path, model, data, data={"resolution": 128})
    assert code == 0 and len(latents()) == 4 + 1 + 4


def test_nan_loss_stops_the_run_and_keeps_the_last_good_backup(tiny_model, tmp_path: Path, monkeypatch) -> None:
    from tuitrain.trainer.families.sd.adapter import StableDiffusionAdapter

    original = StableDiffusionAdapter.predict
    calls = {"n": 0}

    def poisoned(self, parts, noisy, timesteps, batch):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        out = original(self, parts, noisy, timesteps, batch)
        return out * float("nan") if calls["n"] >= 6 else out

    monkeypatch.setattr(StableDiffusionAdapter, "predict", poisoned)
    data = make_dataset(tmp_path / "data", count=4)
    run, code = train_config(tmp_path, tiny_model("sd15"), data, training={"epochs": 10},
                       saving={"backup_every_steps": 2})
    assert code == 1
    finished = _events(run, "finished")[-1]
    assert finished["status"] == "failed" and "loss is nan" in finished["reason"]
    assert _events(run, "error")[-1]["message"] == finished["reason"]
    assert not (run.output / "r.safetensors").exists()  # no LoRA saved from a broken state
    from tuitrain.trainer.backup import latest_backup

    backup = latest_backup(run.checkpoints)
    assert backup is not None and backup.step == 4
    assert all(torch.isfinite(t).all() for t in backup.weights.values())


def test_interrupt_saves_backs_up_and_says_stopped(tiny_model, tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data", count=4)
    run_dir = tmp_path / "r"
    timer = None

    def interrupt_when_stepping() -> None:
        while not (run_dir / "events.jsonl").exists() or '"step"' not in (run_dir / "events.jsonl").read_text():
            threading.Event().wait(0.02)
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl+C

    timer = threading.Thread(target=interrupt_when_stepping, daemon=True)
    timer.start()
    run, code = train_config(tmp_path, tiny_model("sd15"), data, training={"epochs": 1000})
    timer.join(5)
    assert code == 0
    finished = _events(run, "finished")[-1]
    assert finished["status"] == "stopped" and finished["step"] < 2000
    saved = _events(run, "saved")[-1]
    assert Path(saved["path"]).is_file()
    assert _events(run, "backup")[-1]["step"] == finished["step"]


def test_samples_follow_the_prompts_settings(reference_lora: Reference) -> None:
    run = reference_lora.run  # sampling: every epoch, 2 steps, euler_a, "a fox" (seed 9, 96x64) and "moss"
    samples = _events(run, "sample")
    assert [(s["epoch"], s["prompt"]) for s in samples] == [(1, "a fox"), (1, "moss"), (2, "a fox"), (2, "moss")]
    first = Path(samples[0]["path"])
    assert Image.open(first).size == (96, 64)
    meta = json.loads(first.with_suffix(".json").read_text())
    assert meta["seed"] == 9 and meta["steps"] == 2 and meta["prompt"] == "a fox"
    # the same seed and prompt draws the same picture from the same weights
    assert Image.open(Path(samples[1]["path"])).size == (64, 64)


def test_an_epoch_with_no_full_batch_is_refused_with_the_fix(tiny_model, tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data", count=1)
    run, code = train_config(tmp_path, tiny_model("sd15"), data, training={"batch_size": 4})
    assert code == 1
    assert "lower training.batch_size" in _events(run, "finished")[-1]["reason"]


def test_bf16_mixed_precision_trains_on_cpu_and_fp16_says_it_needs_a_gpu(tiny_model, tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data", count=4)
    run, code = train_config(tmp_path, tiny_model("sd15"), data, "bf16", training={"mixed_precision": "bf16"})
    assert code == 0, _events(run)[-1]
    assert _events(run, "started")[0]["dtype"] == "bfloat16"
    steps = _events(run, "step")
    assert len(steps) == 4 and all(s["loss"] == s["loss"] for s in steps)  # finite, not NaN
    run, code = train_config(tmp_path, tiny_model("sd15"), data, "fp16", training={"mixed_precision": "fp16"})
    assert code == 1
    assert "fp16 needs a CUDA GPU" in _events(run, "finished")[-1]["reason"]


def test_diffusers_format_is_saved_beside_and_loads(reference_lora: Reference) -> None:
    from diffusers import DiffusionPipeline

    run = reference_lora.run  # saving: diffusers_format, every epoch, keep_last 1
    assert _events(run, "finished")[-1]["status"] == "completed"
    folder = run.output / "r-diffusers"
    assert (folder / "pytorch_lora_weights.safetensors").is_file()
    assert sorted(p.name for p in run.output.iterdir()) == [
        "r-diffusers", "r-step000002-diffusers", "r-step000002.safetensors", "r.safetensors"]
    pipe = DiffusionPipeline.from_pretrained(reference_lora.model, local_files_only=True)
    pipe.load_lora_weights(str(folder))
    assert pipe.get_active_adapters()


def test_a_damaged_newest_backup_is_skipped_and_the_previous_one_resumes(tiny_model, tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data", count=4)
    saving = {"backup_every_steps": 2, "backup_keep_last": 3, "backup_at_end": False}
    run, code = train_config(tmp_path, tiny_model("sd15"), data, training={"epochs": 3}, saving=saving)
    assert code == 0
    backups = sorted(run.checkpoints.glob("step-*"))
    assert [b.name for b in backups] == ["step-00000002", "step-00000004"]
    state = backups[-1] / "state.pt"
    state.write_bytes(state.read_bytes()[:-100])  # a disk that lost the tail of the file
    # As if the trainer had been killed before it could say "finished" (a finished run is never retrained).
    lines = run.events.read_bytes().splitlines(keepends=True)
    run.events.write_bytes(b"".join(line for line in lines if b'"finished"' not in line))
    (run.output / "r.safetensors").unlink()
    _, code = train_config(tmp_path, tiny_model("sd15"), data, training={"epochs": 3}, saving=saving)
    assert code == 0
    warnings = [e["message"] for e in _events(run, "warning")]
    assert any("skipping backup step-00000004: state.pt is damaged" in w for w in warnings)
    assert _events(run, "started")[-1]["resumed_from"] == 2


def test_out_of_memory_ends_with_advice(tiny_model, tmp_path: Path, monkeypatch) -> None:
    from tuitrain.trainer.families.sd.adapter import StableDiffusionAdapter

    def oom(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(StableDiffusionAdapter, "predict", oom)
    data = make_dataset(tmp_path / "data", count=4)
    run, code = train_config(tmp_path, tiny_model("sd15"), data)
    assert code == 1
    reason = _events(run, "finished")[-1]["reason"]
    assert "out of GPU memory" in reason and "gradient_checkpointing" in reason and "batch_size" in reason
