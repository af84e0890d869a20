"""`tuitrain check` with thousands of concepts: no step that grows with the square of them
(issue 14: 2,000 small concepts took 32 s). Work is counted, not timed.

The quadratic steps were the near-duplicate search (every pair of images compared), the
report's pass over all usable images once per concept, and (linear, but most of a cold
check) two fsyncs per concept for a scan cache that a crash may lose at no cost.
bench/check_concepts.py times the whole command at 200 / 1,000 / 2,000 concepts.
"""

from __future__ import annotations

import os
import random
from collections import defaultdict
from pathlib import Path

import pytest
from PIL import Image

from tuitrain.cli.main import main
from tuitrain.dataset import report as report_module
from tuitrain.dataset.hashing import HASH_BITS, near_duplicates


class CountingHash(int):
    """A dHash that counts how often it is compared (every comparison is an XOR)."""

    comparisons = 0

    def __xor__(self, other: int) -> int:
        CountingHash.comparisons += 1
        return int(self) ^ int(other)

    __rxor__ = __xor__


def _brute_force(hashes: list[tuple[Path, int]], distance: int) -> list[list[Path]]:
    """The groups by definition: in path order, each file joins the nearest representative within
    `distance` bits (the first such on a tie), or becomes one; equal hashes always share a group."""
    groups: list[tuple[int, list[Path]]] = []  # (representative's hash, paths)
    for path, value in sorted(hashes, key=lambda item: item[0]):
        near = [(bin(value ^ rep).count("1"), n) for n, (rep, _) in enumerate(groups)]
        near = [(d, n) for d, n in near if d <= distance]
        same = [n for n, (rep, members) in enumerate(groups) if any(v == value for p, v in hashes if p in members)]
        if same:
            groups[same[0]][1].append(path)
        elif near:
            groups[min(near)[1]][1].append(path)
        else:
            groups.append((value, [path]))
    return sorted((sorted(g) for _, g in groups if len(g) > 1), key=lambda g: g[0])


def test_near_duplicates_are_the_groups_every_pair_would_give() -> None:
    """300 random sets of hashes clustered around a few pictures, with repeats."""
    rng = random.Random(14)
    for _ in range(300):
        centres = [rng.getrandbits(64) for _ in range(rng.randint(1, 5))]
        hashes = []
        for number in range(rng.randrange(60)):
            value = rng.choice(centres)
            for _ in range(rng.randrange(12)):
                value ^= 1 << rng.randrange(64)
            hashes.append((Path(f"p{rng.randrange(100)}-{number}"), value))
        distance = rng.randrange(10)
        assert near_duplicates(hashes, max_distance=distance) == _brute_force(hashes, distance)


@pytest.mark.parametrize("kind", ["distinct", "equal"])
def test_near_duplicates_do_not_compare_every_pair(kind: str) -> None:
    """4,000 images (2,000 concepts of two) were 8 million comparisons; equal hashes (flat pictures, one
    file in two concepts) linked each pair twice over."""
    rng = random.Random(7)
    values = [rng.getrandbits(HASH_BITS) if kind == "distinct" else 0 for _ in range(4000)]
    CountingHash.comparisons = 0
    groups = near_duplicates([(Path(f"img{i}"), CountingHash(v)) for i, v in enumerate(values)])
    assert CountingHash.comparisons < 40 * len(values), CountingHash.comparisons
    assert len(groups) == (0 if kind == "distinct" else 1)


def _config_with_concepts(folder: Path, count: int) -> Path:
    model = folder / "model"
    model.mkdir()
    (model / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline"}')
    lines = ['[model]', 'base = "model"', '[data]', 'resolution = 64', 'bucket_step = 64']
    for index in range(count):
        concept = folder / "data" / f"c{index:04d}"
        concept.mkdir(parents=True)
        Image.new("RGB", (64, 64), (index % 256, index // 256, 90)).save(concept / "img.png")
        (concept / "img.txt").write_text(f"concept {index}")
        lines += ["[[data.concepts]]", f'path = "data/c{index:04d}"']
    config = folder / "c.toml"
    config.write_text("\n".join(lines) + "\n")
    return config


class CountingList(list):  # type: ignore[type-arg]
    passes = 0

    def __iter__(self):  # type: ignore[no-untyped-def]
        CountingList.passes += 1
        return super().__iter__()


def test_check_passes_over_the_images_a_few_times_not_once_per_concept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The report took each concept's images by scanning every usable image again (300 concepts: 300 passes)."""
    real_judge = report_module.judge

    def judge(*args, **kwargs):  # type: ignore[no-untyped-def]
        verdict = real_judge(*args, **kwargs)
        verdict.usable = CountingList(verdict.usable)
        return verdict

    monkeypatch.setattr(report_module, "judge", judge)
    config = _config_with_concepts(tmp_path, 300)
    CountingList.passes = 0
    assert main(["check", str(config)]) == 0, capsys.readouterr()
    assert 0 < CountingList.passes <= 10


def test_a_cold_check_does_not_fsync_per_concept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The scan cache was written with two fsyncs per write, two writes per concept."""
    calls = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real_fsync(fd))[1])
    config = _config_with_concepts(tmp_path, 50)
    assert main(["check", str(config)]) == 0, capsys.readouterr()
    assert calls == []
