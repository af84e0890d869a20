"""Load time and peak host memory of a full-size denoiser: quantized as it loads vs loaded whole.

What a run's start costs in host RAM before step 1: the trainer used to load the whole denoiser in
fp32 (FLUX.1's transformer: 48 GB) and quantize it afterwards; it now loads in the compute dtype
and, from a diffusers folder with model.quantize set, builds the model empty and quantizes each
large layer as its weights are read (tuitrain/trainer/loading/quantized.py).

The weights are random (load cost does not depend on their values), written once as a sharded
diffusers folder (1 GB shards, bf16 as published) from the shipped public config: the SDXL UNet
whole, FLUX.1's transformer at full width with fewer blocks (--flux-blocks DOUBLE SINGLE; the
published 19 + 38 make a 24 GB file, more than a small machine can hold twice). Each case loads in
its own process; peak RSS is the process's ru_maxrss (mmapped file pages it touched included),
shown beside the RSS after importing torch and diffusers; every weight is read once after loading
(from_pretrained maps bf16 files and reads them only when used, as the move to the GPU does). On a CPU-only machine the quantized
layers land in host memory; on a GPU they go to VRAM, so a GPU run's host peak is lower still.

Cases: fp32 (diffusers from_pretrained in fp32: the trainer before), bf16 (from_pretrained in the
compute dtype: the trainer now, unquantized), int8 / nf4 / int4 / fp8 (loading/quantized.py).

Run: python bench/quantize_load.py [--family sdxl|flux] [--cases fp32,bf16,int8,nf4,int4]
         [--flux-blocks 4 8] [--folder DIR] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
SHARD_BYTES = 1 << 30
GIB = 1024**3


def _rss_now() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def write_folder(family: str, folder: Path, flux_blocks: tuple[int, int]) -> tuple[str, int]:
    """A diffusers denoiser folder with random bf16 weights, written shard by shard; (class name, parameters)."""
    import diffusers
    import torch
    from safetensors.torch import save_file

    from tuitrain.trainer.families import family_files

    files = family_files(family)
    config = json.loads((files.configs / files.denoiser_component / "config.json").read_text(encoding="utf-8"))
    if family == "flux":
        config["num_layers"], config["num_single_layers"] = flux_blocks
    cls = getattr(diffusers, config["_class_name"])
    with torch.device("meta"):
        model = cls.from_config(config)
    shapes = {name: t.shape for name, t in model.state_dict().items()}
    params = sum(torch.Size(s).numel() for s in shapes.values())
    marker = folder / "config.json"
    if marker.is_file() and json.loads(marker.read_text(encoding="utf-8")) == {**config, "_bench_params": params}:
        return config["_class_name"], params
    folder.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(0)
    shard: dict[str, torch.Tensor] = {}
    weight_map: dict[str, str] = {}
    names: list[str] = []

    def flush() -> None:
        name = f"diffusion_pytorch_model-{len(names) + 1:05d}.safetensors"
        save_file(shard, str(folder / name))
        weight_map.update({key: name for key in shard})
        names.append(name)
        shard.clear()

    size = 0
    for key in sorted(shapes):
        tensor = torch.randn(shapes[key], generator=generator, dtype=torch.float32).mul_(0.02).to(torch.bfloat16)
        shard[key] = tensor
        size += tensor.numel() * 2
        if size >= SHARD_BYTES:
            flush()
            size = 0
    if shard:
        flush()
    index = {"metadata": {"total_size": params * 2}, "weight_map": weight_map}
    (folder / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps(index), encoding="utf-8")
    marker.write_text(json.dumps({**config, "_bench_params": params}), encoding="utf-8")
    return config["_class_name"], params


def child(case: str, folder: Path, class_name: str, threads: int) -> dict[str, float]:
    """Load the folder one way in this process; what it cost."""
    import diffusers
    import torch

    from tuitrain.trainer.loading.quantized import load_quantized
    from tuitrain.trainer.quantize import weight_bytes

    torch.set_num_threads(threads)
    cls = getattr(diffusers, class_name)
    base = _rss_now()
    start = time.perf_counter()
    if case in ("fp32", "bf16"):
        model = cls.from_pretrained(str(folder), torch_dtype=torch.float32 if case == "fp32" else torch.bfloat16)
    else:
        model = load_quantized(cls, folder, case, torch.bfloat16, torch.device("cpu"))
    # from_pretrained leaves bf16 weights in a memory map, unread until used: read every page, as a run's move
    # to the GPU does, so the figures compare what each way holds once the weights are in use.
    for tensor in [*model.parameters(), *model.buffers()]:
        if type(tensor) in (torch.Tensor, torch.nn.Parameter) and tensor.is_floating_point() and tensor.numel():
            tensor.detach().reshape(-1)[::512].float().sum()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"seconds": seconds, "peak": peak, "base": base, "after": _rss_now(), "model": weight_bytes(model)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=("sdxl", "flux"), default="sdxl")
    parser.add_argument("--cases", default="fp32,bf16,int8,nf4,int4")
    parser.add_argument("--flux-blocks", nargs=2, type=int, default=(4, 8), metavar=("DOUBLE", "SINGLE"))
    parser.add_argument("--folder", type=Path, default=None, help="where the random weights go (kept for reruns)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--class-name", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.folder, args.class_name, args.threads)))
        return 0

    folder = args.folder or Path(f"/tmp/tuitrain-bench-{args.family}")
    started = time.perf_counter()
    class_name, params = write_folder(args.family, folder, tuple(args.flux_blocks))
    what = args.family if args.family == "sdxl" else f"flux ({args.flux_blocks[0]} double + {args.flux_blocks[1]} single blocks)"
    print(f"{what}: {class_name}, {params / 1e9:.2f}B parameters, {params * 2 / GIB:.2f} GiB in bf16 files "
          f"({time.perf_counter() - started:.0f} s to write or check)")
    print(f"{'case':6} {'load s':>7} {'peak RSS GiB':>13} {'over imports':>13} {'model GiB':>10}")
    for case in args.cases.split(","):
        out = subprocess.run([sys.executable, __file__, "--child", case, "--folder", str(folder), "--class-name",
                              class_name, "--threads", str(args.threads)], capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(HERE)})
        if out.returncode != 0:
            print(f"{case:6} failed: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode}")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{case:6} {r['seconds']:7.1f} {r['peak'] / GIB:13.2f} {(r['peak'] - r['base']) / GIB:13.2f} "
              f"{r['model'] / GIB:10.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
