"""Time turning a 6000x4000 JPEG into a terminal-sized preview (target: under 60 ms).

Usage: python bench/dataset_preview.py [--size WxH] [--repeat N] [--neighbour]
Prints the first (cold) decode, the median of repeated decodes (cache bypassed),
a cache hit, and the same for a 6000x4000 PNG for comparison (PNG has no
reduced-scale decoding, so it is much slower and prefetch matters more).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from neighbour import add_argument, describe, neighbour  # noqa: E402
from PIL import Image, ImageDraw

from tuitrain.dataset import PreviewCache, make_preview


def make_photo(path: Path, size: tuple[int, int]) -> None:
    """A busy picture (not a flat colour, which would decode unrealistically fast)."""
    rng = random.Random(0)
    small = Image.new("RGB", (size[0] // 20, size[1] // 20))
    small.putdata(
        [(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(small.width * small.height)]
    )
    image = small.resize(size, Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image)
    for _ in range(300):
        x, y = rng.randrange(size[0]), rng.randrange(size[1])
        draw.line((x, y, x + rng.randrange(-900, 900), y + rng.randrange(-900, 900)), fill=(255, 255, 255), width=3)
    image.save(path, quality=92)


def timed(path: Path, box: tuple[int, int], repeat: int, cache: PreviewCache | None = None) -> list[float]:
    """Milliseconds per preview; with a cache, through it (hits after the first)."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        if cache is None:
            make_preview(path, box)
        else:
            cache.get(path, box)
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", default="800x600", help="preview box in pixels (default 800x600)")
    parser.add_argument("--repeat", type=int, default=10)
    add_argument(parser)
    args = parser.parse_args()
    box = tuple(int(part) for part in args.size.lower().split("x"))

    print(describe(args.neighbour))
    with tempfile.TemporaryDirectory(prefix="tuitrain-bench-") as work, neighbour(args.neighbour):
        jpeg = Path(work) / "photo.jpg"
        png = Path(work) / "photo.png"
        started = time.perf_counter()
        make_photo(jpeg, (6000, 4000))
        Image.open(jpeg).save(png, compress_level=1)
        print(
            f"made 6000x4000 JPEG ({jpeg.stat().st_size / 1e6:.1f} MB) and PNG in {time.perf_counter() - started:.1f} s"
        )

        for label, path in (("JPEG", jpeg), ("PNG ", png)):
            first = timed(path, box, 1)[0]
            runs = timed(path, box, args.repeat if label == "JPEG" else 3)
            preview = make_preview(path, box)
            print(
                f"{label} 6000x4000 -> {preview.width}x{preview.height}: first {first:.1f} ms, "
                f"median {statistics.median(runs):.1f} ms, max {max(runs):.1f} ms"
            )

        cache = PreviewCache(max_items=8)
        cache.get(jpeg, box)
        hit = statistics.median(timed(jpeg, box, 100, cache))
        print(f"PreviewCache hit: {hit:.3f} ms")
        for small_box in ((160, 90), (320, 180)):
            runs = timed(jpeg, small_box, args.repeat)
            print(f"JPEG 6000x4000 -> fits {small_box[0]}x{small_box[1]}: median {statistics.median(runs):.1f} ms")
        cache.close()


if __name__ == "__main__":
    main()
