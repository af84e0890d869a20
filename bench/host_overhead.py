"""Host overhead per training step: the time a step spends outside the denoiser's forward and backward.

On a near-empty model (the tiny SD 1.5 of tuitrain.trainer.tiny, 64 px, batch 1) the
denoiser is cheap, so what is left of a step is the loop's own cost: data loading
(image decode and VAE encode when latents are not cached), captions, noise, loss,
GPU syncs, clipping, the optimizer, events. Each step's wall time is taken from the
step events (perf_counter in the display callback); the denoiser's share is timed by
wrapping the family adapter's `predict` (forward) and `Accelerator.backward`. Wall time is
what a run feels; the training thread's CPU time (time.thread_time, 1 torch thread, so the
denoiser runs on that thread) is the same overhead without the preemption a shared machine
adds, and leaves out what data threads do in parallel.

Comparing two versions: `--tree PATH` runs the measurement against the tuitrain package
under PATH (e.g. the previous commit unpacked with
`git archive HEAD~3 tuitrain | tar -x -C /tmp/before`); several --tree values alternate
round by round, so machine noise hits every version alike. Each measurement runs in its
own process. Figures only, no pass/fail.

Run: python bench/host_overhead.py [--tree PATH ...] [--rounds 3] [--steps 40]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
MODES = {
    # name: (data.cache_latents, training.gradient_accumulation, data.workers)
    "cached, accumulation 1, workers 0": (True, 1, 0),
    "cached, accumulation 1, workers 2": (True, 1, 2),
    "cached, accumulation 4, workers 0": (True, 4, 0),
    "uncached, accumulation 1, workers 0": (False, 1, 0),
    "uncached, accumulation 1, workers 2": (False, 1, 2),
}


def measure(tree: Path, mode: str, steps: int) -> dict[str, float | str]:
    """One run of `steps` optimizer steps in this process, against the tuitrain under `tree`."""
    sys.path.insert(0, str(tree))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import accelerate
    import torch
    from PIL import Image

    import tuitrain
    from tuitrain.config import parse_config
    from tuitrain.runs import RunDir
    from tuitrain.trainer.families import get_adapter
    from tuitrain.trainer.loop import run_training
    from tuitrain.trainer.tiny import save_tiny_model

    assert Path(tuitrain.__file__).resolve().is_relative_to(tree.resolve()), tuitrain.__file__
    torch.set_num_threads(1)
    cache_latents, accumulation, workers = MODES[mode]
    inside = {"s": 0.0, "cpu": 0.0}

    def timed(fn):  # type: ignore[no-untyped-def]
        def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
            t0, c0 = time.perf_counter(), time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                inside["s"] += time.perf_counter() - t0
                inside["cpu"] += time.thread_time() - c0
        return wrapper

    adapter_class = type(get_adapter("sd15"))
    adapter_class.predict = timed(adapter_class.predict)  # type: ignore[method-assign]
    accelerate.Accelerator.backward = timed(accelerate.Accelerator.backward)  # type: ignore[method-assign]
    marks: list[tuple[float, float, float, float]] = []

    def display(event: dict) -> None:
        if event["type"] == "step":
            marks.append((time.perf_counter(), inside["s"], time.thread_time(), inside["cpu"]))

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = save_tiny_model("sd15", work / "model")
        data = work / "data"
        data.mkdir()
        for i in range(8):
            Image.new("RGB", (64, 64), (30 * i, 90, 160)).save(data / f"{i}.png")
            (data / f"{i}.txt").write_text("a blue square")
        settings = {
            "model": {"family": "sd15", "base": str(model)},
            "data": {"resolution": 64, "concepts": [{"path": str(data)}], "cache_latents": cache_latents,
                     "workers": workers},
            "training": {"max_steps": steps, "batch_size": 1, "gradient_accumulation": accumulation,
                         "learning_rate": 1e-4, "seed": 0, "device": "cpu"},
            "lora": {"rank": 4, "alpha": 4},
            "sampling": {"every_epochs": 0},
            "saving": {"every_epochs": 0, "backup_every_minutes": 0},
        }
        run = RunDir(work / "run")
        run.create_folders()
        assert run_training(run, parse_config(settings), work, display) == 0
    warm = 16 // accumulation + 1  # skip the first epochs (latent and text caching, allocator warm-up)
    gaps = [[b[i] - a[i] for i in range(4)] for a, b in zip(marks, marks[1:])][warm:]
    ms = lambda values: statistics.median(values) * 1000  # noqa: E731
    return {"step_ms": ms([g[0] for g in gaps]), "denoiser_ms": ms([g[1] for g in gaps]),
            "host_ms": ms([g[0] - g[1] for g in gaps]), "host_cpu_ms": ms([g[2] - g[3] for g in gaps]),
            "n": len(gaps)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tree", type=Path, action="append", help="a folder holding the tuitrain package to measure")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--mode", action="append", choices=list(MODES))
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    trees = args.tree or [HERE]
    modes = args.mode or list(MODES)
    if args.worker:
        print(json.dumps(measure(trees[0], modes[0], args.steps)))
        return
    results: dict[tuple[str, str], list[dict]] = {}
    for _ in range(args.rounds):
        for mode in modes:
            for tree in trees:
                out = subprocess.run([sys.executable, __file__, "--worker", "--tree", str(tree), "--mode", mode,
                                      "--steps", str(args.steps)], capture_output=True, text=True, check=False)
                if out.returncode != 0:
                    sys.exit(f"{tree} / {mode} failed:\n{out.stderr[-3000:]}")
                results.setdefault((mode, str(tree)), []).append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"tiny SD1.5, 64 px, batch 1, LoRA rank 4, CPU, 1 torch thread; {args.rounds} rounds x {args.steps} steps; "
          "medians over rounds of per-run medians")
    for mode in modes:
        print(mode)
        for tree in trees:
            rows = results[(mode, str(tree))]
            med = {k: statistics.median(r[k] for r in rows) for k in ("step_ms", "denoiser_ms", "host_ms", "host_cpu_ms")}
            print(f"  {str(tree):28s} step {med['step_ms']:6.2f} ms  denoiser fwd+bwd {med['denoiser_ms']:6.2f} ms  "
                  f"host overhead {med['host_ms']:5.2f} ms wall, {med['host_cpu_ms']:5.2f} ms training-thread CPU")


if __name__ == "__main__":
    main()
