"""Training-step speed, peak VRAM and MFU for the full-size denoiser of every registered family.

Random weights built from the public configs shipped in tuitrain (the family adapter's
full_size_denoiser; speed does not depend on the weights' values), driven through the
adapter's own predict() with random_batch() inputs, so a new family is measured by
registering; --method lora | lokr | loha: rank 16 on the attention
layers through tuitrain's own inject_lora, fp32 adapter weights as LoraMethod makes
them; --method finetune: every UNet weight in fp32 master weights. bf16 autocast,
AdamW (fused; --optimizer adamw8bit for bitsandbytes), latents and text
embeddings precomputed (as with tuitrain's caches). Reports seconds per step and
peak VRAM at batch 1 and at every batch size up to the largest that fits, and MFU:
FLOPs per image x batch / step time / the GPU's dense bf16 peak.

FLOPs per image and step, from DESIGN.md: adapters (fwd+bwd, frozen base) SD1.5 @512
1.73 TF, SDXL @1024 14.2 TF; finetune (all weights) 2.41 TF and 20.2 TF. (The adapters'
own FLOPs are left out: at rank 16 they are under 1 %.)
Goals on an H100 (issue 4): SD1.5 batch 1 <= 0.09 s/step; SDXL batch 1 <= 0.30 s/step;
SDXL batch 8 >= 35 % MFU.

Run on a CUDA machine:  python bench/train_gpu.py [--out bench/results/]
Smoke test on CPU (tiny models, no figures worth keeping):  python bench/train_gpu.py --tiny
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

# FLOPs per image at the family's default resolution, from DESIGN.md; a family without a figure
# gets s/step and VRAM but no MFU.
# PixArt-Σ @1024 (4096 image + 300 text tokens): forward 6.63 TF, counted with torch's FlopCounterMode on the
# shipped config (meta device) through the adapter's predict(), backward through the frozen base or all weights.
# FLUX.1-dev @1024 (4096 image + 512 T5 tokens) and SD3.5 large @1024 (4096 + 333 text tokens), counted the same
# way through the adapters' predict() (forward 74.4 TF and 31.1 TF).
# Stable Cascade stage C @1024 (24x24 latents + 77 CLIP-G tokens, the 3.6B prior): forward 4.08 TF, counted the
# same way (the 1B lite prior: 1.17 / 2.41 / 4.30 TF). Würstchen v2's prior @1024 (24x24 latents + 77 CLIP-bigG
# tokens): forward 1.15 TF, counted the same way.
FLOPS_PER_IMAGE = {"sd15": 1.73e12, "sdxl": 14.2e12, "pixart": 15.4e12, "flux": 163.6e12,
                   "sd3": 69.5e12, "cascade": 8.31e12, "wuerstchen": 2.37e12}  # frozen base (adapters)
FLOPS_PER_IMAGE_FINETUNE = {"sd15": 2.41e12, "sdxl": 20.2e12, "pixart": 19.9e12, "flux": 223.1e12,
                            "sd3": 93.4e12, "cascade": 15.0e12, "wuerstchen": 4.24e12}  # all weights
# Dense bf16 peak, TFLOP/s (vendor figures; SXM parts).
PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "RTX 4090": 165.0}


def gpu_peak(name: str) -> float | None:
    for key, value in PEAK_TFLOPS.items():
        if key in name:
            return value * 1e12
    return None


def build_denoiser(family: str, tiny: bool):  # type: ignore[no-untyped-def]
    from tuitrain.trainer.families import family_files, get_adapter

    if tiny:
        from tuitrain.trainer.tiny import build_tiny_pipeline

        return getattr(build_tiny_pipeline(family), family_files(family).denoiser_component)
    with torch.device("cuda"):
        return get_adapter(family).full_size_denoiser()


def resolution(family: str) -> int:
    from tuitrain.families import FAMILIES

    return FAMILIES[family].default_resolution


def trainable(unet, family: str, method: str, device: torch.device) -> list:  # type: ignore[no-untyped-def]
    """Set up `unet` for `method` as tuitrain's methods do; the parameters that train."""
    unet.requires_grad_(False)
    if method == "finetune":
        return [p.requires_grad_(True) for p in unet.parameters()]  # fp32 master weights
    from tuitrain.config.schema import LoraSection
    from tuitrain.trainer.families import get_adapter
    from tuitrain.trainer.methods.lora import inject_lora

    if device.type == "cuda":
        unet.to(dtype=torch.bfloat16)  # the frozen base in the compute dtype
    adapter = get_adapter(family)
    handles = inject_lora(
        unet, [], LoraSection(rank=16, alpha=16, type=method),
        unet_target_modules=list(adapter.attention_modules), unet_ff_modules=list(adapter.feed_forward_modules),
        unet_conv_modules=list(adapter.conv_modules), text_encoder_target_modules=list(adapter.text_encoder_modules),
    )
    params = handles.trainable_parameters()
    for p in params:
        p.data = p.data.float()
    return params


def make_optimizer(params: list, name: str, device: torch.device):  # type: ignore[no-untyped-def]
    if name == "adamw8bit":
        import bitsandbytes as bnb

        return bnb.optim.AdamW8bit(params, lr=1e-4)
    return torch.optim.AdamW(params, lr=1e-4, fused=device.type == "cuda")


def measure(family: str, batch: int, tiny: bool, steps: int, device: torch.device, method: str = "lora",
            optimizer_name: str = "adamw", checkpointing: bool = False, compile_mode: str = "off") -> dict:
    from tuitrain.trainer.families import get_adapter
    from tuitrain.trainer.families.base import ModelParts

    torch.manual_seed(0)
    adapter = get_adapter(family)
    unet = build_denoiser(family, tiny).to(device)
    params = trainable(unet, family, method, device)
    if checkpointing:
        unet.enable_gradient_checkpointing()
    unet.train()
    if compile_mode != "off":  # the trainer's own regional / full compilation (performance.compile)
        from tuitrain.trainer.performance import compile_denoiser

        compile_denoiser(unet, compile_mode, "inductor", lambda line: None)
    optimizer = make_optimizer(params, optimizer_name, device)
    model = unet
    if torch.distributed.is_initialized():  # --gpus N: one process per GPU, DDP as the trainer runs it
        from tuitrain.trainer.distributed import ForwardingDDP

        model = ForwardingDDP(unet, device_ids=[device.index] if device.type == "cuda" else None,
                              broadcast_buffers=False)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    inputs = adapter.random_batch(unet, batch, resolution(family) if not tiny else 64, device, dtype)
    latents = inputs.latents
    parts = ModelParts(pipeline=None, denoiser=model, vae=None, text_encoders=[], tokenizers=[],  # type: ignore[arg-type]
                       noise_scheduler=None, prediction_type="epsilon")

    def step() -> None:
        noise = torch.randn_like(latents)
        t = torch.randint(0, 1000, (batch,), device=device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            pred = adapter.predict(parts, latents + noise, t, inputs)
        loss = torch.nn.functional.mse_loss(pred.float(), noise)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    t_first = time.perf_counter()
    step()  # the first step compiles (performance.compile): its time is reported on its own
    if device.type == "cuda":
        torch.cuda.synchronize()
    first = time.perf_counter() - t_first
    for _ in range(2):  # warm-up: allocator, cuDNN/cuBLAS heuristics
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - t0) / steps
    peak = torch.cuda.max_memory_allocated() if device.type == "cuda" else 0
    del unet, model, optimizer, params
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {"family": family, "batch": batch, "s_per_step": seconds, "peak_vram_gib": peak / 2**30,
            "first_step_s": first, "compile": compile_mode}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tiny", action="store_true", help="CPU smoke test with tiny models")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--families", default="sd15,sdxl", help="comma-separated registered families, or 'all'")
    parser.add_argument("--max-batch", type=int, default=64)
    parser.add_argument("--out", type=Path, help="folder for a results file named after the GPU")
    parser.add_argument("--method", default="lora", choices=["lora", "lokr", "loha", "finetune"])
    parser.add_argument("--optimizer", default="adamw", choices=["adamw", "adamw8bit"])
    parser.add_argument("--checkpointing", action="store_true", help="gradient checkpointing")
    parser.add_argument("--compile", default="off", choices=["off", "blocks", "full"],
                        help="torch.compile (inductor) as performance.compile does; the first step's time is the "
                             "compile time")
    parser.add_argument("--gpus", type=int, default=1,
                        help="N > 1: batch 1 on one GPU, then on N GPUs (one process each, DDP as "
                             "distributed.processes runs it): throughput and scaling efficiency")
    args = parser.parse_args()
    if args.gpus > 1:
        return scaling(args)
    device = torch.device("cpu" if args.tiny else "cuda")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    name = torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or "cpu"
    peak = gpu_peak(name) if device.type == "cuda" else None
    what = "all UNet weights" if args.method == "finetune" else f"{args.method} rank 16 (attention)"
    lines = [f"device: {name}; torch {torch.__version__}; bf16; {what}; {args.optimizer}"
             + ("; gradient checkpointing" if args.checkpointing else "")
             + (f"; compile {args.compile} (inductor)" if args.compile != "off" else "")]
    flops = FLOPS_PER_IMAGE_FINETUNE if args.method == "finetune" else FLOPS_PER_IMAGE
    results = []
    from tuitrain.families import FAMILY_NAMES

    families = list(FAMILY_NAMES) if args.families == "all" else args.families.split(",")
    for family in families:
        batch = 1
        while batch <= args.max_batch:
            try:
                r = measure(family, batch, args.tiny, args.steps if batch == 1 else max(5, args.steps // 2), device,
                            args.method, args.optimizer, args.checkpointing, args.compile)
            except torch.cuda.OutOfMemoryError:
                lines.append(f"{family} batch {batch}: out of memory (largest that fits: {batch // 2})")
                torch.cuda.empty_cache()
                break
            if peak and not args.tiny and family in flops:
                r["mfu"] = flops[family] * batch / r["s_per_step"] / peak
            results.append(r)
            mfu = f"  MFU {r['mfu'] * 100:5.1f} %" if "mfu" in r else ""
            lines.append(f"{family} @{resolution(family)} batch {batch:3d}: {r['s_per_step']:.4f} s/step  "
                         f"{batch / r['s_per_step']:7.2f} img/s  peak {r['peak_vram_gib']:6.2f} GiB{mfu}"
                         f"  first step {r['first_step_s']:.1f} s")
            print(lines[-1], flush=True)
            if args.tiny and batch >= 2:
                break
            batch *= 2
    print("\n".join(lines[:1]))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        stem = name.replace(" ", "_").replace("/", "_")
        stem = f"{stem}-{args.method}" + ("-ckpt" if args.checkpointing else "")
        (args.out / f"train_gpu-{stem}.txt").write_text("\n".join(lines) + "\n")
        (args.out / f"train_gpu-{stem}.json").write_text(json.dumps(results, indent=2))


def scaling(args: argparse.Namespace) -> None:
    """--gpus N: each family's batch-1 step on 1 GPU, then on N (torchrun, one process per GPU, DDP); the
    efficiency is N-GPU images/s over N x 1-GPU images/s. --tiny: 2 processes on the CPU (gloo)."""
    import subprocess

    from tuitrain.families import FAMILY_NAMES

    families = list(FAMILY_NAMES) if args.families == "all" else args.families.split(",")
    if "RANK" in os.environ:  # one of the N processes
        import torch.distributed as dist

        local = int(os.environ.get("LOCAL_RANK", "0"))
        device = torch.device("cpu") if args.tiny else torch.device("cuda", local)
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("gloo" if args.tiny else "nccl")
        for family in families:
            r = measure(family, 1, args.tiny, args.steps, device, args.method, args.optimizer, args.checkpointing)
            if dist.get_rank() == 0:
                print("RESULT " + json.dumps(r), flush=True)
        dist.destroy_process_group()
        return
    device = torch.device("cpu" if args.tiny else "cuda")
    single = {f: measure(f, 1, args.tiny, args.steps, device, args.method, args.optimizer, args.checkpointing)
              for f in families}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={args.gpus}",
               str(Path(__file__).resolve()), *sys.argv[1:]]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    multi = {r["family"]: r for r in (json.loads(line[7:]) for line in done.stdout.splitlines()
                                      if line.startswith("RESULT "))}
    if done.returncode != 0 or not multi:
        print(done.stdout[-3000:], done.stderr[-3000:], sep="\n")
        raise SystemExit(f"the {args.gpus}-process run failed (exit code {done.returncode})")
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu (tiny models, gloo)"
    print(f"{name}: batch 1 per GPU, {args.method}; scaling 1 -> {args.gpus} processes")
    for family in families:
        one, many = single[family], multi[family]
        rate1, rate_n = 1 / one["s_per_step"], args.gpus / many["s_per_step"]
        print(f"{family}: 1 GPU {rate1:7.2f} img/s; {args.gpus} GPUs {rate_n:7.2f} img/s "
              f"({many['s_per_step']:.4f} s/step); efficiency {100 * rate_n / (args.gpus * rate1):5.1f} %")


if __name__ == "__main__":
    main()
