"""A tuitrain training step against a minimal hand-written diffusers loop, same tiny model, same process.

Both train the same LoRA (peft, attention layers, rank 4) on the same tiny SD1.5
UNet at 64 px, batch 2, AdamW, epsilon objective, with latents and text embeddings
precomputed. tuitrain's time per step is read from its own step events (after
warm-up); the hand loop is timed with perf_counter. Rounds alternate so machine
noise hits both. Goal (issue 4): ratio <= 1.05.

Run: python bench/train_step_cpu.py [--steps 60] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from PIL import Image  # noqa: E402

from tuitrain.config import parse_config  # noqa: E402
from tuitrain.runs import RunDir  # noqa: E402
from tuitrain.runs.events import iter_events  # noqa: E402
from tuitrain.trainer.loop import run_training  # noqa: E402
from tuitrain.trainer.tiny import save_tiny_model  # noqa: E402

RES, BATCH, RANK = 64, 2, 4


def make_data(folder: Path) -> None:
    folder.mkdir(parents=True)
    for i in range(8):
        Image.new("RGB", (RES, RES), (30 * i, 90, 160)).save(folder / f"{i}.png")
        (folder / f"{i}.txt").write_text("a blue square")


def tuitrain_step_times(model: Path, data: Path, work: Path, steps: int, tag: str) -> list[float]:
    config = parse_config({
        "model": {"family": "sd15", "base": str(model)},
        "data": {"resolution": RES, "concepts": [{"path": str(data)}]},
        "training": {"max_steps": steps, "batch_size": BATCH, "learning_rate": 1e-4, "seed": 0, "device": "cpu"},
        "lora": {"rank": RANK, "alpha": RANK},
        "sampling": {"every_epochs": 0},
        "saving": {"every_epochs": 0, "backup_every_minutes": 0},
    })
    run = RunDir(work / f"run-{tag}")
    run.create_folders()
    assert run_training(run, config, work) == 0
    times = [e["time"] for _, e in iter_events(run.events) if e["type"] == "step"]
    gaps = [b - a for a, b in zip(times, times[1:])]
    return gaps[10:]  # skip warm-up (and the first epoch's latent caching)


def hand_loop_step_times(model: Path, steps: int) -> list[float]:
    """What a minimal diffusers + peft LoRA script does per step, nothing more."""
    from diffusers import DDPMScheduler, StableDiffusionPipeline
    from peft import LoraConfig

    torch.manual_seed(0)
    pipe = StableDiffusionPipeline.from_pretrained(model, local_files_only=True)
    unet, vae = pipe.unet, pipe.vae
    for m in (unet, vae, pipe.text_encoder):
        m.requires_grad_(False)
    unet.add_adapter(LoraConfig(r=RANK, lora_alpha=RANK, init_lora_weights="gaussian",
                                target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    params = [p for p in unet.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    with torch.no_grad():
        pixels = torch.rand(8, 3, RES, RES) * 2 - 1
        latents_all = vae.encode(pixels).latent_dist.mean * vae.config.scaling_factor
        ids = pipe.tokenizer(["a blue square"] * BATCH, padding="max_length", max_length=77, return_tensors="pt").input_ids
        hidden = pipe.text_encoder(ids)[0]
    times = []
    for step in range(steps):
        t0 = time.perf_counter()
        latents = latents_all[(step * BATCH) % 8 : (step * BATCH) % 8 + BATCH]
        noise = torch.randn_like(latents)
        timesteps = torch.randint(0, 1000, (BATCH,))
        noisy = scheduler.add_noise(latents, noise, timesteps)
        pred = unet(noisy, timesteps, encoder_hidden_states=hidden).sample
        loss = torch.nn.functional.mse_loss(pred, noise)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t0)
    return times[10:]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = save_tiny_model("sd15", work / "model")
        make_data(work / "data")
        ours: list[float] = []
        theirs: list[float] = []
        for r in range(args.rounds):
            theirs += hand_loop_step_times(model, args.steps)
            ours += tuitrain_step_times(model, work / "data", work, args.steps, str(r))
    a, b = statistics.median(ours), statistics.median(theirs)
    print(f"tiny SD1.5 UNet, {RES}px, batch {BATCH}, LoRA rank {RANK}, CPU threads {torch.get_num_threads()}")
    print(f"tuitrain step      median {a * 1000:7.2f} ms  (n={len(ours)})")
    print(f"hand-written loop  median {b * 1000:7.2f} ms  (n={len(theirs)})")
    print(f"ratio tuitrain / hand loop: {a / b:.3f}  (goal <= 1.05)")


if __name__ == "__main__":
    main()
