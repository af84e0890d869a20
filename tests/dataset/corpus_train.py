"""What `tuitrain train` does with each file of a folder: `python -m tests.dataset.corpus_train CONFIG CACHE_DIR`.

Runs the trainer's own data path (TrainingData, then load_pixels of every sample with
a flip and a random crop, as crop_jitter draws it) and prints JSON: the files used, the
files skipped, and any sample that failed to load. Run in a bounded subprocess by
test_corpus_verdict (it imports torch, which the dataset tests do not).
"""

from __future__ import annotations

import json
import random
import resource
import sys
from pathlib import Path

import torch

from tuitrain.config import load_config
from tuitrain.trainer.data import TrainingData, load_pixels, random_crop_origin


def main(config_path: Path, cache_dir: Path) -> dict[str, object]:
    torch.set_num_threads(1)
    config = load_config(config_path)
    data = TrainingData(config, config_path.parent, cache_dir=cache_dir)  # says what it skips on stderr
    failed: dict[str, str] = {}
    for sample in data.samples:
        width, height = sample.assignment.bucket
        try:
            pixels = load_pixels(sample, flip=True, jitter=random_crop_origin(sample, random.Random(sample.index)))
            if tuple(pixels.shape) != (3, height, width) or not bool(torch.isfinite(pixels).all()):
                failed[sample.path.name] = f"pixels of shape {tuple(pixels.shape)} for a {width}x{height} bucket"
        except Exception as exc:  # recorded, not raised: the test names every file that fails
            failed[sample.path.name] = f"{type(exc).__name__}: {exc}"
    return {
        "used": sorted(sample.path.name for sample in data.samples),
        "skipped": sorted(problem.path.name for problem in data.skipped),
        "failed": failed,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    }


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]), Path(sys.argv[2]))))
