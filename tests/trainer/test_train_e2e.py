"""Training end to end on tiny models: it learns, saves, obeys commands and resumes exactly.

Runs train in-process (harness.py); the detached trainer, its socket, SIGKILL and resume and
`tuitrain train`'s refusal of a bad base model run as real processes, since they are about them.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import torch

from tests.trainer.conftest import denoising_loss, make_dataset
from tests.trainer.harness import LORA_SETS, new_run, train, train_cli
from tests.trainer.harness import events as _events
from tests.trainer.resume import kill_mid_run, resume_matches
from tuitrain.runs import RunDir, RunState, run_status
from tuitrain.runs.control import send_command


def _new_run(name: str, model: Path, data: Path, *sets: str) -> RunDir:
    return new_run(name, model, data, *LORA_SETS, *sets)


@torch.no_grad()
def _eval_loss(model: Path, lora: Path | None, data: Path) -> float:
    """Mean denoising loss on the training images at fixed noise and timesteps."""
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(model, local_files_only=True)
    if lora is not None:
        pipe.load_lora_weights(str(lora))
    return denoising_loss(pipe, "sd15", data)


@torch.no_grad()
def _data_latent_means(model: Path, data: Path) -> torch.Tensor:
    from diffusers import StableDiffusionPipeline
    from PIL import Image

    pipe = StableDiffusionPipeline.from_pretrained(model, local_files_only=True)
    pixels = torch.stack([
        torch.tensor(list(Image.open(p).convert("RGB").getdata()), dtype=torch.float32).view(64, 64, 3).permute(2, 0, 1)
        / 127.5 - 1 for p in sorted(data.glob("*.png"))
    ])
    latents = pipe.vae.encode(pixels).latent_dist.mean * pipe.vae.config.scaling_factor
    return latents.mean(dim=(0, 2, 3))


@torch.no_grad()
def _sample_latent_means(model: Path, lora: Path | None) -> torch.Tensor:
    """Per-channel mean of latents drawn for the training caption (4 seeds)."""
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(model, local_files_only=True)
    if lora is not None:
        pipe.load_lora_weights(str(lora))
    latents = pipe(["a red square with a blue mark"] * 4, num_inference_steps=20, guidance_scale=1.0, height=64,
                   width=64, output_type="latent", generator=torch.Generator().manual_seed(0)).images
    return latents.mean(dim=(0, 2, 3))


def test_training_lowers_the_loss_against_the_untrained_model(tiny_model, tmp_path: Path) -> None:
    model, data = tiny_model("sd15"), make_dataset(tmp_path / "data")
    run = _new_run("learn", model, data, "training.epochs=40", "sampling.every_epochs=40", "sampling.steps=3")
    assert train(run) == 0, _events(run)[-1]
    events = _events(run)
    assert events[0]["type"] == "started" and events[0]["total_steps"] == 160
    assert events[-1] == {**events[-1], "type": "finished", "status": "completed"}
    lora = run.output / "learn.safetensors"
    assert lora.is_file()
    samples = [e for e in events if e["type"] == "sample"]
    assert samples and Path(samples[0]["path"]).is_file() and samples[0]["prompt"] == "a red square with a blue mark"
    before, after = _eval_loss(model, None, data), _eval_loss(model, lora, data)
    # the LoRA, loaded by diffusers' own loader, fits the training images measurably better
    assert after < before * 0.9, (before, after)
    # and what it draws moves toward the training images: compared in the VAE's latent space
    # (the tiny VAE is untrained, so its decoded colours mean nothing; its latents do)
    target = _data_latent_means(model, data)
    far, near = _sample_latent_means(model, None), _sample_latent_means(model, lora)
    assert (near - target).norm() < 0.7 * (far - target).norm(), (target, far, near)
    assert run_status(run).state is RunState.FINISHED


def test_sigkill_then_resume_ends_with_the_same_weights(cli, tiny_model, tmp_path: Path) -> None:
    model, data = tiny_model("sd15"), make_dataset(tmp_path / "data")
    common = ("training.epochs=8", "saving.backup_every_steps=3", "saving.backup_keep_last=2")
    straight = _new_run("straight", model, data, *common)
    assert train(straight) == 0  # the uninterrupted reference, in-process

    broken = _new_run("broken", model, data, *common)
    last_step = kill_mid_run(cli, broken, (4, 26))
    resume_matches(broken, straight.output / "straight.safetensors", last_step, backup_every=3)


def test_commands_over_the_socket_pause_save_and_stop(cli, tiny_model, tmp_path: Path) -> None:
    model, data = tiny_model("sd15"), make_dataset(tmp_path / "data")
    run = _new_run("ctl", model, data, "training.epochs=500")
    assert cli("train", "ctl", "--detach").returncode == 0

    def wait_for(kind: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [e for e in _events(run) if e["type"] == kind]
            if found:
                return found[-1]
            time.sleep(0.05)
        raise AssertionError(f"no {kind} event; log: {run.log.read_text()[-2000:]}")

    wait_for("step")
    send_command(run.socket, "pause")
    paused = wait_for("paused")
    assert run_status(run).state is RunState.PAUSED
    time.sleep(0.5)
    steps = [e["step"] for e in _events(run) if e["type"] == "step"]
    assert max(steps) <= paused["step"] + 1  # nothing trains while paused
    send_command(run.socket, "save")
    saved = wait_for("saved")
    assert Path(saved["path"]).is_file()
    send_command(run.socket, "resume")
    wait_for("resumed")
    send_command(run.socket, "stop")
    finished = wait_for("finished")
    assert finished["status"] == "stopped"
    assert wait_for("backup")["step"] == finished["step"]
    assert run_status(run).state is RunState.STOPPED


def test_bad_base_model_fails_with_a_message_not_a_hang(tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data")
    fake = tmp_path / "model.safetensors"
    fake.write_bytes(b"this is not a checkpoint")
    run = _new_run("bad", fake, data)
    out = train_cli(run)
    assert out.returncode == 1
    assert "Traceback" not in out.stdout + out.stderr
    # Refused from the file's header before a trainer starts: the run stays as it was.
    assert out.stderr.startswith(f"cannot train: model.base: '{fake}' is not a valid .safetensors file")
    assert not run.events.exists() or not _events(run)
    # The trainer process itself (what a TUI or --detach starts) fails the same way, as an event.
    direct = subprocess.run([sys.executable, "-m", "tuitrain.trainer.main", str(run.root)], capture_output=True,
                            text=True, timeout=300)
    assert direct.returncode == 1 and "Traceback" not in direct.stderr
    finished = _events(run)[-1]
    assert finished["type"] == "finished" and finished["status"] == "failed"
    assert str(fake) in finished["reason"]
