"""A tuitrain training step against a minimal hand-written diffusers loop, same tiny model, same process.

Both train the same LoRA (peft, attention layers, rank 4) on the same tiny SD1.5
UNet at 64 px, batch 2, AdamW, epsilon objective, with latents and text embeddings
precomputed. tuitrain's time per step is taken at its own step events (after
warm-up); the hand loop's around its step. Rounds alternate so machine noise hits
both. Goal (issue 4): ratio <= 1.05.

Two clocks: wall time (perf_counter), and the process's CPU time (process_time), which
counts every thread's work (tuitrain's data threads included) but not the time the
process waited for a core: on a machine shared with other work the CPU ratio is the
one to read, with --threads 1 (torch's own threads spin while they wait for each other).

Run: python bench/train_step_cpu.py [--steps 60] [--rounds 3] [--threads N] [--workers N ...]
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
from tuitrain.trainer.loop import run_training  # noqa: E402
from tuitrain.trainer.tiny import save_tiny_model  # noqa: E402

RES, BATCH, RANK = 64, 2, 4


def make_data(folder: Path) -> None:
    folder.mkdir(parents=True)
    for i in range(8):
        Image.new("RGB", (RES, RES), (30 * i, 90, 160)).save(folder / f"{i}.png")
        (folder / f"{i}.txt").write_text("a blue square")


Times = list[tuple[float, float]]  # per step: (wall seconds, process CPU seconds)


def _gaps(marks: list[tuple[float, float]]) -> Times:
    return [(b[0] - a[0], b[1] - a[1]) for a, b in zip(marks, marks[1:])]


def tuitrain_step_times(model: Path, data: Path, work: Path, steps: int, tag: str, workers: int | None) -> Times:
    data_section: dict = {"resolution": RES, "concepts": [{"path": str(data)}]}
    if workers is not None:
        data_section["workers"] = workers
    config = parse_config({
        "model": {"family": "sd15", "base": str(model)},
        "data": data_section,
        "training": {"max_steps": steps, "batch_size": BATCH, "learning_rate": 1e-4, "seed": 0, "device": "cpu"},
        "lora": {"rank": RANK, "alpha": RANK},
        "sampling": {"every_epochs": 0},
        "saving": {"every_epochs": 0, "backup_every_minutes": 0},
    })
    run = RunDir(work / f"run-{tag}")
    run.create_folders()
    marks: list[tuple[float, float]] = []

    def display(event: dict) -> None:
        if event["type"] == "step":
            marks.append((time.perf_counter(), time.process_time()))

    assert run_training(run, config, work, display) == 0
    return _gaps(marks)[10:]  # skip warm-up (and the first epoch's latent caching)


def hand_loop_step_times(model: Path, steps: int) -> Times:
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
    times: Times = []
    for step in range(steps):
        t0, c0 = time.perf_counter(), time.process_time()
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
        times.append((time.perf_counter() - t0, time.process_time() - c0))
    return times[10:]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, action="append",
                        help="data.workers to measure (repeatable; default: the schema's)")
    parser.add_argument("--threads", type=int, default=max(1, os.cpu_count() or 1), help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    variants: list[int | None] = args.workers or [None]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = save_tiny_model("sd15", work / "model")
        make_data(work / "data")
        ours: dict[int | None, Times] = {v: [] for v in variants}
        theirs: Times = []
        for r in range(args.rounds):
            theirs += hand_loop_step_times(model, args.steps)
            for v in variants:
                ours[v] += tuitrain_step_times(model, work / "data", work, args.steps, f"{r}-{v}", v)
    median = lambda times, clock: statistics.median(t[clock] for t in times)  # noqa: E731
    print(f"tiny SD1.5 UNet, {RES}px, batch {BATCH}, LoRA rank {RANK}, CPU threads {torch.get_num_threads()}, "
          f"{args.rounds} rounds x {args.steps} steps; median ms per step, wall / process CPU")
    print(f"hand-written loop               {median(theirs, 0) * 1000:7.2f} / {median(theirs, 1) * 1000:7.2f}"
          f"  (n={len(theirs)})")
    for v in variants:
        label = "default" if v is None else str(v)
        wall, cpu = median(ours[v], 0) / median(theirs, 0), median(ours[v], 1) / median(theirs, 1)
        print(f"tuitrain (data.workers {label:>7}) {median(ours[v], 0) * 1000:7.2f} / {median(ours[v], 1) * 1000:7.2f}"
              f"  (n={len(ours[v])})  ratio to the hand loop: wall {wall:.3f}, CPU {cpu:.3f}  (goal <= 1.05)")


if __name__ == "__main__":
    main()
