"""How many samples each concept gives an epoch, and how they spread over its buckets.

Two ways to weigh a concept, as kohya and OneTrainer do:
  - by repeats (kohya's "10_name" folders, OneTrainer's REPEATS): every image `repeats` times;
  - by samples (OneTrainer's SAMPLES, `samples_per_epoch`): the concept gives exactly N samples
    whatever its image count, each image N / images times on average.
Regularisation concepts with neither set are balanced by samples to the training concepts'
samples per epoch: kohya repeats (or cuts) its reg images to match the train images x repeats,
so prior preservation weighs as much as the subject. Several such reg concepts share that
count in proportion to their images x folder repeats.

A balanced concept's N is split over its buckets once (proportional to their image counts,
largest remainder), so every epoch has the same batches and steps; which images of a
bucket get the one extra visit changes every epoch (trainer.data draws them per epoch).
The pre-flight report and the trainer both count with these functions.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

from tuitrain.dataset.scan import ConceptScan

K = TypeVar("K", bound=Hashable)


def split(total: int, weights: Sequence[int]) -> list[int]:
    """`total` split in proportion to `weights` (largest remainder; ties to the earlier one): sums to total."""
    whole = sum(weights)
    if whole <= 0 or total <= 0:
        return [0] * len(weights)
    shares = [total * w // whole for w in weights]
    left = total - sum(shares)
    order = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % whole), i))
    for i in order[:left]:
        shares[i] += 1
    return shares


def concept_targets(scans: Sequence[ConceptScan]) -> list[int | None]:
    """Per concept (in order): its samples per epoch when balanced by samples, None when repeats decide.

    `scans` hold the usable images only (dataset.usable.judge's scans)."""
    targets: list[int | None] = [scan.spec.samples_per_epoch for scan in scans]
    auto = [i for i, scan in enumerate(scans) if scan.spec.role == "regularisation" and _unset(scan)]
    train = sum(
        targets[i] if targets[i] is not None else len(scan.images) * max(scan.repeats, 0)
        for i, scan in enumerate(scans) if scan.spec.role == "train"
    )
    if train and auto:
        shares = split(train, [len(scans[i].images) * max(scans[i].repeats, 0) for i in auto])
        for i, share in zip(auto, shares):
            targets[i] = share
    return targets


def _unset(scan: ConceptScan) -> bool:
    """Neither repeats nor samples_per_epoch given in the config (a folder name's count does not decide)."""
    return scan.spec.repeats is None and scan.spec.samples_per_epoch is None


def bucket_quotas(images_per_bucket: dict[K, int], target: int) -> dict[K, int]:
    """A balanced concept's `target` samples over its buckets, in proportion to their images."""
    keys = sorted(images_per_bucket)  # type: ignore[type-var]
    return dict(zip(keys, split(target, [images_per_bucket[k] for k in keys])))


def epoch_samples(scans: Sequence[ConceptScan]) -> list[int]:
    """Samples per epoch of every concept (balanced or by repeats); a validation concept never trains: 0."""
    return [
        0 if scan.spec.role == "validation" else target if target is not None
        else len(scan.images) * max(scan.repeats, 0)
        for scan, target in zip(scans, concept_targets(scans))
    ]
