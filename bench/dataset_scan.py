"""Time a scan of 10,000 small images, cold (no cache) and warm (cache, nothing changed),
and a full pre-flight (every image decoded and hashed) of 1,000 photo-sized ones.

Usage: python bench/dataset_scan.py [--count N] [--preflight-count N] [--dir DIR]
The folder is generated once (kept in DIR if given, else a temp dir); the
"cold" figure includes reading every header but not the OS page cache being
cold, which a script cannot reset without root.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import Image

from tuitrain.dataset import BucketSpec, ConceptSpec, preflight, scan_concept


def make_folder(folder: Path, count: int) -> None:
    """JPEGs and PNGs of a few sizes, a caption for most of them."""
    folder.mkdir(parents=True, exist_ok=True)
    if len(list(folder.glob("*.jpg"))) + len(list(folder.glob("*.png"))) >= count:
        return
    sizes = [(64, 48), (48, 64), (64, 64), (80, 40)]
    for index in range(count):
        image = Image.new("RGB", sizes[index % 4], (index % 256, (index * 7) % 256, 90))
        if index % 2:
            image.save(folder / f"img_{index:05d}.png")
        else:
            image.save(folder / f"img_{index:05d}.jpg", quality=80)
        if index % 10:
            (folder / f"img_{index:05d}.txt").write_text(f"tag{index % 13}, tag{index % 7}", encoding="utf-8")


def make_photos(folder: Path, count: int) -> None:
    """1024x768 JPEGs (about what people caption), each different."""
    folder.mkdir(parents=True, exist_ok=True)
    if len(list(folder.glob("*.jpg"))) >= count:
        return
    for index in range(count):
        small = Image.new("RGB", (4, 3))
        small.putdata([((index * 37 + k * 91) % 256, (index * 11 + k * 53) % 256, (k * 29) % 256) for k in range(12)])
        small.resize((1024, 768), Image.Resampling.BICUBIC).save(folder / f"photo_{index:04d}.jpg", quality=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--preflight-count", type=int, default=1_000)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()

    work = args.dir or Path(tempfile.mkdtemp(prefix="tuitrain-bench-"))
    folder = work / "10_bench"
    cache_dir = Path(tempfile.mkdtemp(prefix="tuitrain-bench-cache-"))
    try:
        started = time.perf_counter()
        make_folder(folder, args.count)
        print(f"made {args.count} images in {time.perf_counter() - started:.1f} s ({folder})")
        spec = ConceptSpec(path=folder)
        for label in ("cold (no cache)", "warm (cache)   "):
            started = time.perf_counter()
            scan = scan_concept(spec, cache_dir=cache_dir)
            elapsed = time.perf_counter() - started
            print(
                f"scan {label}: {elapsed * 1000:7.0f} ms for {len(scan.images)} images "
                f"({elapsed / max(1, len(scan.images)) * 1e6:.0f} us each), {len(scan.problems)} problems"
            )

        photos = work / "1_photos"
        started = time.perf_counter()
        make_photos(photos, args.preflight_count)
        print(f"made {args.preflight_count} 1024x768 JPEGs in {time.perf_counter() - started:.1f} s")
        for label in ("cold (decode + hash)", "warm (cached hashes)"):
            started = time.perf_counter()
            report = preflight([ConceptSpec(photos)], BucketSpec(resolution=512), batch_size=4, cache_dir=cache_dir)
            elapsed = time.perf_counter() - started
            print(
                f"preflight {label}: {elapsed * 1000:6.0f} ms for {report.concepts[0].images} images, "
                f"{report.steps_per_epoch} steps/epoch, {len(report.near_duplicates)} near-duplicate groups"
            )
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
