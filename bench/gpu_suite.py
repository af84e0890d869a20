"""One command for every family's training-step figures on a GPU: s/step, peak VRAM and MFU, eager and compiled.

For each registered family (full-size architecture, random weights, LoRA rank 16 on the attention, bf16,
fused AdamW, cached latents and text; bench/train_gpu.py's measure() does each row): batch 1 eager, batch 1
with performance.compile = blocks (inductor; its first step, the compile, reported apart), and the largest
batch that fits (doubling from 2 until out of memory or --max-batch), eager. Writes one table as markdown and
JSON to --out and prints the markdown. Sized to finish in about 10 minutes on one H100 (--families to cut it
down); compile adds a minute or so per family on first use.

Targets (issue 24, H100): SD 1.5 LoRA @512 batch 1 <= 0.06 s/step, SDXL LoRA @1024 batch 1 <= 0.30 s/step,
SDXL best-batch MFU >= 35 %, Flux-dev LoRA @1024 batch 1 <= 0.40 s/step with MFU >= 40 %.

GPU:  python bench/gpu_suite.py --out bench/results/
CPU smoke test (tiny models, the same code, no figures worth keeping):  python bench/gpu_suite.py --tiny
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import train_gpu  # noqa: E402  (bench/train_gpu.py: measure(), the FLOP table, the GPU peaks)

TARGETS = {("sd15", 1): "<= 0.06 s", ("sdxl", 1): "<= 0.30 s", ("flux", 1): "<= 0.40 s, MFU >= 40 %",
           ("sdxl", "best"): "MFU >= 35 %"}


def row(family: str, batch: int, compile_mode: str, tiny: bool, steps: int, device: torch.device,
        peak: float | None) -> dict:
    r = train_gpu.measure(family, batch, tiny, steps, device, "lora", "adamw", False, compile_mode)
    flops = train_gpu.FLOPS_PER_IMAGE.get(family)
    r["mfu"] = flops * batch / r["s_per_step"] / peak if (peak and flops and not tiny) else None
    return r


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tiny", action="store_true", help="CPU smoke test with tiny models")
    parser.add_argument("--families", default="all", help="comma-separated registered families, or 'all'")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--no-compile", action="store_true", help="skip the compiled rows")
    parser.add_argument("--out", type=Path, help="folder for gpu_suite-<GPU>.md and .json")
    args = parser.parse_args()
    from tuitrain.families import FAMILY_NAMES

    device = torch.device("cpu" if args.tiny else "cuda")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu (tiny models)"
    peak = train_gpu.gpu_peak(name) if device.type == "cuda" else None
    families = list(FAMILY_NAMES) if args.families == "all" else args.families.split(",")
    rows: list[dict] = []
    started = time.perf_counter()
    for family in families:
        plans = [(1, "off")] + ([] if args.no_compile else [(1, "blocks")])
        for batch, compile_mode in plans:
            rows.append(row(family, batch, compile_mode, args.tiny, args.steps, device, peak))
            print(json.dumps(rows[-1]), flush=True)
        best = None
        batch = 2
        while batch <= (2 if args.tiny else args.max_batch):
            try:
                best = row(family, batch, "off", args.tiny, max(3, args.steps // 2), device, peak)
            except torch.cuda.OutOfMemoryError:
                torch.cuda.empty_cache()
                break
            print(json.dumps(best), flush=True)
            batch *= 2
        if best is not None:
            best["best"] = True
            rows.append(best)
    lines = [f"# Training-step figures on {name} (torch {torch.__version__}; LoRA rank 16, bf16, fused AdamW)", "",
             "| family | res | batch | compile | s/step | img/s | peak VRAM GiB | MFU | first step s | target |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        target = TARGETS.get((r["family"], "best" if r.get("best") else r["batch"]), "")
        mfu = f"{r['mfu'] * 100:.1f} %" if r.get("mfu") else ""
        res = 64 if args.tiny else train_gpu.resolution(r["family"])
        lines.append(f"| {r['family']} | {res} | {r['batch']} | {r['compile']} | "
                     f"{r['s_per_step']:.4f} | {r['batch'] / r['s_per_step']:.2f} | {r['peak_vram_gib']:.2f} | {mfu} | "
                     f"{r['first_step_s']:.1f} | {target} |")
    lines += ["", f"{len(rows)} rows in {time.perf_counter() - started:.0f} s."]
    print("\n".join(lines))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        stem = name.replace(" ", "_").replace("/", "_")
        (args.out / f"gpu_suite-{stem}.md").write_text("\n".join(lines) + "\n")
        (args.out / f"gpu_suite-{stem}.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
