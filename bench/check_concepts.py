"""Wall time of `tuitrain check CONFIG` on configs with many [[data.concepts]] (issue 14: 2,000 took 32 s).

Each concept is its own small folder (two 64x64 PNGs with captions), so the time is what
check spends per concept, not per image. The pictures are random 8x8 grey patterns (every
one different, as photos are), or with --solid one flat colour each (every perceptual hash
alike: the worst case for the near-duplicate search). Times are of a real process, cold scan cache
first (a fresh XDG_CACHE_HOME), then warm (the same cache again).

Usage: python bench/check_concepts.py [--counts 200,1000,2000] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image


def picture(index: int, solid: bool) -> Image.Image:
    if solid:
        return Image.new("RGB", (64, 64), (index % 256, (index // 256) % 256, 90))
    rng = random.Random(index)
    small = Image.new("L", (8, 8))
    small.putdata([rng.randrange(256) for _ in range(64)])
    return small.resize((64, 64), Image.Resampling.NEAREST).convert("RGB")


def make_tree(root: Path, count: int, solid: bool) -> Path:
    """`count` concept folders under root/data and a config naming each; returns the config."""
    data = root / ("solid" if solid else "data")
    for index in range(count):
        folder = data / f"c{index:05d}"
        if folder.is_dir():
            continue
        folder.mkdir(parents=True)
        for k in range(2):
            picture(2 * index + k, solid).save(folder / f"img{k}.png")
            (folder / f"img{k}.txt").write_text(f"concept {index}, image {k}", encoding="utf-8")
    model = root / "model"
    model.mkdir(exist_ok=True)
    (model / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline"}')
    config = root / f"concepts-{count}{'-solid' if solid else ''}.toml"
    lines = ['[model]', f'base = {json.dumps(str(model))}', '[data]', 'resolution = 64', 'bucket_step = 64']
    for index in range(count):
        lines += ['[[data.concepts]]', f'path = "{data.name}/c{index:05d}"']
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


def timed_check(config: Path, cache: Path) -> tuple[float, int]:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "tuitrain", "check", str(config)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, check=False)
    return time.perf_counter() - start, done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="200,1000,2000", help="concept counts, comma-separated")
    parser.add_argument("--solid", action="store_true", help="flat-colour pictures (alike hashes)")
    parser.add_argument("--dir", help="keep the generated folders here (default: a temp folder)")
    args = parser.parse_args()
    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="tuitrain-bench-concepts-"))
    root.mkdir(parents=True, exist_ok=True)
    print(f"{'concepts':>9} {'cold s':>8} {'warm s':>8}  exit")
    for count in (int(c) for c in args.counts.split(",")):
        config = make_tree(root, count, args.solid)
        cache = Path(tempfile.mkdtemp(prefix="cache-", dir=root))
        cold, code = timed_check(config, cache)
        warm, _ = timed_check(config, cache)
        print(f"{count:>9} {cold:>8.2f} {warm:>8.2f}  {code}")


if __name__ == "__main__":
    main()
