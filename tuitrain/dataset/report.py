"""The pre-flight check: can this data train, and what will the trainer actually do with it?

Batching contract (as in tuitrain.trainer.data.epoch_batches and .shard): each
batch is batch_size samples from a single bucket, a bucket's incomplete last
batch is dropped each epoch, and one optimizer step takes gradient_accumulation
batches from each of num_gpus processes, from any buckets (the effective batch
is batch_size x gradient_accumulation x num_gpus). So a bucket with n samples
(images x repeats) gives n // batch_size batches, skips n % batch_size samples
per epoch (random ones, as the order is shuffled), and never trains when
n < batch_size: the classic silent failure this report exists to name. Several
processes split the epoch's batches (each its every num_gpus-th, the
leftover batches dropped), so they change the steps, not which buckets train.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuitrain.dataset.balance import bucket_quotas, concept_targets, epoch_samples
from tuitrain.dataset.buckets import BucketAssignment, Size, assign_buckets
from tuitrain.dataset.class_images import planned_images
from tuitrain.dataset.hashing import HASH_BITS, exact_duplicates, near_duplicate_groups
from tuitrain.dataset.scan import ConceptScan, FileProblem, ImageInfo, scan_concept
from tuitrain.dataset.spec import BucketSpec, ConceptSpec
from tuitrain.dataset.unused import UnusedFolder, unused_folders, unused_summary
from tuitrain.dataset.holdout import held_out_paths
from tuitrain.dataset.references import find_reference, folder_warnings, size_note
from tuitrain.dataset.usable import Judgement, judge

# 2: "unreadable" lists every file not used (also shapes bucketing cannot take); notes carry Pillow's warnings
# 3: near_duplicates group around a representative (listed first), near_duplicate_bits and hash_bits added
# 4: concepts carry role, loss_weight, resolution, balanced and share; "disabled" lists concepts left out
# 5: with num_gpus > 1, samples_per_batch is one process's batch (batch_size) and batches_per_epoch counts every
#    process's batches (the trainer's shard); a bucket needs batch_size samples, not batch_size x num_gpus
REPORT_VERSION = 5


@dataclass(frozen=True)
class BucketStats:
    size: Size
    images: int
    samples: int  # images x repeats
    batches_per_epoch: int
    skipped_per_epoch: int
    samples_by_concept: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class BucketIssue:
    """A bucket that loses samples: all of them (never_trains) or a few each epoch."""

    size: Size
    samples: int
    needed: int  # samples one batch takes
    never_trains: bool
    skipped_per_epoch: int
    images: tuple[Path, ...]
    fixes: tuple[str, ...]


@dataclass(frozen=True)
class ConceptStats:
    name: str
    path: Path
    caption: str
    repeats: int
    images: int
    samples: int  # per epoch: images x repeats, or the balanced count (dataset.balance)
    errors: tuple[str, ...]
    warnings: tuple[str, ...]
    role: str = "train"
    loss_weight: float = 1.0
    resolution: int = 0  # the buckets' resolution for this concept
    balanced: bool = False  # samples per epoch fixed (samples_per_epoch, or a regularisation concept's default)
    share: float = 0.0  # of the epoch's samples

    @property
    def repeats_text(self) -> str:
        """Repeats as the table shows them: '~1.5' for a concept balanced by samples."""
        if not self.balanced:
            return str(self.repeats)
        return f"~{self.samples / self.images:.3g}" if self.images else "-"


@dataclass
class PreflightReport:
    """Everything `tuitrain check` says; `scans` and `assignments` are for the TUI, not serialised."""

    settings: dict[str, Any]
    root: Path
    concepts: list[ConceptStats] = field(default_factory=list)
    buckets: list[BucketStats] = field(default_factory=list)
    bucket_issues: list[BucketIssue] = field(default_factory=list)
    batches_per_epoch: int = 0
    steps_per_epoch: int = 0  # optimizer steps: batches // gradient_accumulation
    epochs: int = 0
    total_steps: int = 0
    upscaled: list[BucketAssignment] = field(default_factory=list)
    missing_captions: list[Path] = field(default_factory=list)
    empty_captions: list[Path] = field(default_factory=list)
    exact_duplicates: list[list[Path]] = field(default_factory=list)
    near_duplicates: list[list[Path]] = field(default_factory=list)  # each group's representative first
    held_out: list[Path] = field(default_factory=list)  # kept out of training for the eval loss (dataset.holdout)
    near_distance: dict[Path, int] = field(default_factory=dict)  # bits from its group's representative
    unreadable: list[FileProblem] = field(default_factory=list)
    notes: list[tuple[Path, str]] = field(default_factory=list)
    unused_folders: list[UnusedFolder] = field(default_factory=list)  # sub-folders with images no concept reads
    blocking: list[str] = field(default_factory=list)
    scans: list[ConceptScan] = field(default_factory=list)
    assignments: dict[Path, BucketAssignment] = field(default_factory=dict)
    concept_of: dict[Path, str] = field(default_factory=dict)
    disabled: list[str] = field(default_factory=list)  # concepts set enabled = false, left out

    @property
    def can_train(self) -> bool:
        return not self.blocking

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data with stable keys; bump REPORT_VERSION when a key changes meaning."""
        return {
            "version": REPORT_VERSION,
            "can_train": self.can_train,
            "blocking": list(self.blocking),
            "settings": dict(self.settings),
            "root": _text(self.root),
            "concepts": [
                {
                    "name": c.name,
                    "path": _text(c.path),
                    "caption": c.caption,
                    "repeats": c.repeats,
                    "images": c.images,
                    "samples": c.samples,
                    "errors": list(c.errors),
                    "warnings": list(c.warnings),
                    "role": c.role,
                    "loss_weight": c.loss_weight,
                    "resolution": c.resolution,
                    "balanced": c.balanced,
                    "share": round(c.share, 4),
                }
                for c in self.concepts
            ],
            "disabled": list(self.disabled),
            "buckets": [
                {
                    "width": b.size[0],
                    "height": b.size[1],
                    "images": b.images,
                    "samples": b.samples,
                    "batches_per_epoch": b.batches_per_epoch,
                    "skipped_per_epoch": b.skipped_per_epoch,
                    "samples_by_concept": dict(b.samples_by_concept),
                }
                for b in self.buckets
            ],
            "bucket_issues": [
                {
                    "width": i.size[0],
                    "height": i.size[1],
                    "samples": i.samples,
                    "needed": i.needed,
                    "never_trains": i.never_trains,
                    "skipped_per_epoch": i.skipped_per_epoch,
                    "images": [_text(p) for p in i.images],
                    "fixes": list(i.fixes),
                }
                for i in self.bucket_issues
            ],
            "steps": {
                "samples_per_batch": self.settings["samples_per_batch"],
                "samples_per_step": self.settings["samples_per_step"],
                "batches_per_epoch": self.batches_per_epoch,
                "per_epoch": self.steps_per_epoch,
                "epochs": self.epochs,
                "total": self.total_steps,
            },
            "upscaled": [
                {
                    "path": _text(a.path),
                    "width": a.original_size[0],
                    "height": a.original_size[1],
                    "bucket": list(a.bucket),
                    "scale": round(a.scale, 4),
                }
                for a in self.upscaled
            ],
            "missing_captions": [_text(p) for p in self.missing_captions],
            "empty_captions": [_text(p) for p in self.empty_captions],
            "exact_duplicates": [[_text(p) for p in group] for group in self.exact_duplicates],
            "near_duplicates": [[_text(p) for p in group] for group in self.near_duplicates],
            "near_duplicate_bits": [[self.near_distance.get(p, 0) for p in group] for group in self.near_duplicates],
            "hash_bits": HASH_BITS,
            "unreadable": [{"path": _text(p.path), "reason": p.reason} for p in self.unreadable],
            "notes": [{"path": _text(path), "note": note} for path, note in self.notes],
            "unused_folders": [
                {"path": _text(f.path), "concept": f.concept, "images": f.images} for f in self.unused_folders
            ],
            "images": [
                {
                    "path": _text(path),
                    "concept": self.concept_of.get(path, ""),
                    "width": a.original_size[0],
                    "height": a.original_size[1],
                    "bucket": list(a.bucket),
                    "crop_box": list(a.crop_box),
                }
                for path, a in self.assignments.items()
            ],
        }

    def render(self, *, max_items: int = 25, other_problems: int = 0) -> str:
        """The human report, plain text within 80 columns (print it without Rich markup);
        `other_problems`: reasons outside the data that stop the run (they make the headline CANNOT TRAIN)."""
        from tuitrain.dataset.report_text import render_report

        return render_report(self, max_items=max_items, other_problems=other_problems)


def _text(path: Path | None) -> str:
    return "" if path is None else os.fspath(path)


def preflight(
    concepts: Sequence[ConceptSpec],
    buckets: BucketSpec,
    *,
    batch_size: int = 1,
    gradient_accumulation: int = 1,
    num_gpus: int = 1,
    epochs: int = 1,
    max_steps: int | None = None,
    cache_dir: Path | None = None,
    full_check: bool = True,
    disabled: Sequence[str] = (),
    validation_split: float = 0.0,
) -> PreflightReport:
    """Scan every concept and work out buckets, steps and every problem.

    full_check decodes every image (in parallel, hashes cached like the scan)
    to find files that do not decode and duplicates; without it the report
    relies on headers only.
    """
    per_batch = batch_size  # one process's batch, from one bucket; the processes split the batches (data.shard)
    report = PreflightReport(
        settings={
            "resolution": buckets.resolution,
            "bucketing": buckets.enabled,
            "bucket_step": buckets.step,
            "max_aspect": buckets.max_aspect,
            "batch_size": batch_size,
            "gradient_accumulation": gradient_accumulation,
            "num_gpus": num_gpus,
            "samples_per_batch": per_batch,
            "samples_per_step": per_batch * gradient_accumulation * num_gpus,  # the effective batch
            "epochs": epochs,
            "max_steps": max_steps,
            "full_check": full_check,
        },
        root=_common_root(concepts),
        disabled=list(disabled),
    )
    report.blocking.extend(_setting_errors(buckets, batch_size, gradient_accumulation, num_gpus, epochs, max_steps))
    if not concepts:
        report.blocking.append("no concept folders given")
    if report.blocking:
        return report

    scans = [scan_concept(spec, cache_dir=cache_dir) for spec in concepts]
    report.unused_folders = unused_folders(concepts)
    for scan in scans:
        report.blocking.extend(f"concept '{scan.name}': {error}" for error in scan.errors)
    # editing pairs: a missing references folder, or references no image pairs with (all files, not just usable),
    # judged per folder: concepts sharing one (cull --references) each use their own part of it
    pairing = [(s.name, s.spec.references, [i.path for i in s.images] + [p.path for p in s.problems]) for s in scans]
    for scan, warnings in zip(scans, folder_warnings(pairing)):
        scan.warnings.extend(warnings)
    # The one usable-image rule the trainer applies too (dataset.usable): what it rejects, `train` skips.
    verdict = judge(scans, buckets, cache_dir=cache_dir, decode=full_check)
    report.scans = verdict.scans
    report.unreadable = verdict.rejected
    usable = verdict.usable
    if full_check:
        _find_duplicates(verdict, report)
    for scan in report.scans:  # class images the trainer draws before training: planned as they will be
        planned = planned_images(scan, buckets.for_concept(scan.spec).resolution)
        if planned:
            scan.images.extend(planned)
            usable.extend((image, scan) for image in planned)
            scan.warnings.append(
                f"{len(planned)} of {scan.spec.class_images} class images are still to be drawn: the trainer draws "
                f"them with the base model from \"{scan.spec.instance_prompt}\" before training (counted here as "
                "they will be)"
            )

    by_scan: dict[int, list[ImageInfo]] = defaultdict(list)  # one pass, not one per concept (issue 14)
    for image, owner in usable:
        by_scan[id(owner)].append(image)
    targets = concept_targets(report.scans)
    per_epoch = epoch_samples(report.scans)
    all_samples = sum(per_epoch)
    for scan, target, samples in zip(report.scans, targets, per_epoch):
        images = by_scan[id(scan)]
        kept = {image.path for image in images}
        report.missing_captions.extend(p for p in scan.missing_captions if p in kept)
        report.empty_captions.extend(p for p in scan.empty_captions if p in kept)
        report.concepts.append(
            ConceptStats(
                name=scan.name,
                path=Path(scan.spec.path),
                caption=scan.spec.caption,
                repeats=scan.repeats,
                images=len(images),
                samples=samples,
                errors=tuple(scan.errors),
                warnings=tuple(scan.warnings),
                role=scan.spec.role,
                loss_weight=scan.spec.loss_weight,
                resolution=buckets.for_concept(scan.spec).resolution,
                balanced=target is not None,
                share=samples / all_samples if all_samples else 0.0,
            )
        )
    for image, owner in usable:
        notes = dict.fromkeys(image.notes + verdict.decode_notes(image.path))  # the header may have said it already
        report.notes.extend((image.path, note) for note in notes)
        if owner.spec.references is not None:  # an edit pair of two sizes: the reference is resized to the image's
            reference = find_reference(image, owner.spec.references)
            resized = size_note(image, reference) if reference is not None else ""
            if resized:
                report.notes.append((image.path, resized))

    # Held out for the eval loss (dataset.holdout: validation concepts, data.validation_split): listed, and
    # left out of the buckets and steps, as the trainer leaves them out of training.
    report.held_out = held_out_paths(report.scans, {s.spec.path: s.spec.role for s in report.scans}, validation_split)
    if report.held_out:
        held = set(report.held_out)
        usable = [(image, scan) for image, scan in usable if image.path not in held]
    _fill_buckets(report, usable, buckets, per_batch, batch_size)
    # Each process trains every num_gpus-th batch, as many as the others (data.shard); a step takes
    # gradient_accumulation of its own.
    report.steps_per_epoch = report.batches_per_epoch // num_gpus // gradient_accumulation
    _fill_steps(report, epochs, max_steps)
    if not usable:
        hint = f"; {unused_summary(report.unused_folders)}" if report.unused_folders else ""
        report.blocking.append(f"no usable image ({len(report.unreadable)} files could not be read){hint}")
    elif report.batches_per_epoch == 0:
        report.blocking.append(
            f"no bucket has the {per_batch} samples one batch needs, so nothing would train "
            "(see the bucket problems for fixes)"
        )
    elif report.steps_per_epoch == 0 and num_gpus > 1:
        report.blocking.append(
            f"only {report.batches_per_epoch} batch(es) per epoch for {num_gpus} processes, "
            f"{report.batches_per_epoch // num_gpus} each, fewer than gradient_accumulation {gradient_accumulation}: "
            "not one optimizer step"
        )
    elif report.steps_per_epoch == 0:
        report.blocking.append(
            f"only {report.batches_per_epoch} batch(es) per epoch, fewer than gradient_accumulation "
            f"{gradient_accumulation}: not one optimizer step"
        )
    return report


def _setting_errors(
    buckets: BucketSpec, batch_size: int, accumulation: int, gpus: int, epochs: int, max_steps: int | None
) -> list[str]:
    errors = []
    for name, value in (("batch_size", batch_size), ("gradient_accumulation", accumulation), ("num_gpus", gpus)):
        if value < 1:
            errors.append(f"{name} must be at least 1, got {value}")
    if max_steps is None and epochs < 1:
        errors.append(f"epochs must be at least 1, got {epochs}")
    if max_steps is not None and max_steps < 1:
        errors.append(f"max_steps must be at least 1, got {max_steps}")
    if buckets.resolution < 1 or buckets.step < 1:
        errors.append("resolution and bucket step must be positive")
    if buckets.max_aspect < 1:
        errors.append(f"max_aspect must be at least 1, got {buckets.max_aspect}")
    return errors


def _common_root(concepts: Sequence[ConceptSpec]) -> Path:
    """The folder paths are shown relative to: the parent of the concept folders."""
    parents = [os.path.abspath(Path(spec.path).parent) for spec in concepts]
    if not parents:
        return Path(".")
    try:
        return Path(os.path.commonpath(parents))
    except ValueError:  # different drives on Windows
        return Path(parents[0])


def _find_duplicates(verdict: Judgement, report: PreflightReport) -> None:
    """Exact and near duplicates among the usable images, from the hashes the decode check made."""
    kept = [image for image, _ in verdict.usable]
    report.exact_duplicates = exact_duplicates((image.path, verdict.hashes[image.path].sha256 or "") for image in kept)
    exact_group = {path: number for number, group in enumerate(report.exact_duplicates) for path in group}
    groups = [
        group
        for group in near_duplicate_groups([(image.path, verdict.hashes[image.path].dhash or 0) for image in kept])
        if len({exact_group.get(path, path) for path, _ in group}) > 1  # else already listed as exact copies
    ]
    report.near_duplicates = [[path for path, _ in group] for group in groups]
    report.near_distance = {path: distance for group in groups for path, distance in group}


def _fill_buckets(
    report: PreflightReport,
    usable: list[tuple[ImageInfo, ConceptScan]],
    spec: BucketSpec,
    per_batch: int,
    batch_size: int,
) -> None:
    # Each concept's images in its own buckets (a concept may set its own resolution), counted in
    # samples as the trainer counts them: repeats per image, or a balanced concept's quota per bucket.
    members: dict[Size, list[tuple[BucketAssignment, ConceptScan]]] = defaultdict(list)
    quota: dict[tuple[int, Size], int] = {}  # (concept, bucket) -> samples per epoch
    by_scan: dict[int, list[ImageInfo]] = defaultdict(list)
    for image, owner in usable:
        by_scan[id(owner)].append(image)
    for ci, (scan, target) in enumerate(zip(report.scans, concept_targets(report.scans))):
        images = by_scan[id(scan)]
        counts: dict[Size, int] = defaultdict(int)
        for image, assignment in zip(images, assign_buckets(images, spec.for_concept(scan.spec))):
            report.assignments[image.path] = assignment
            report.concept_of[image.path] = scan.name
            members[assignment.bucket].append((assignment, scan))
            counts[assignment.bucket] += 1
            if assignment.upscaled:
                report.upscaled.append(assignment)
        for size, images_in in counts.items():  # a validation concept is held out: it trains no sample
            quota[ci, size] = 0 if scan.spec.role == "validation" else images_in * max(scan.repeats, 0)
        if target is not None:
            quota.update({(ci, size): n for size, n in bucket_quotas(dict(counts), target).items()})
    index = {id(scan): ci for ci, scan in enumerate(report.scans)}

    for size in sorted(members):
        owners = {index[id(scan)]: scan for _, scan in members[size]}
        entries = [(a, s) for a, s in members[size] if quota[index[id(s)], size] > 0]
        samples = sum(quota[ci, size] for ci in owners)
        batches, skipped = divmod(samples, per_batch)
        by_concept: dict[str, int] = defaultdict(int)
        for ci, scan in owners.items():
            if quota[ci, size]:
                by_concept[scan.name] += quota[ci, size]
        report.buckets.append(
            BucketStats(size, len(members[size]), samples, batches, skipped, tuple(sorted(by_concept.items())))
        )
        if entries and skipped:
            report.bucket_issues.append(
                BucketIssue(
                    size=size,
                    samples=samples,
                    needed=per_batch,
                    never_trains=batches == 0,
                    skipped_per_epoch=skipped,
                    images=tuple(sorted(a.path for a, _ in entries if a.path is not None)),
                    fixes=tuple(_fixes(size, entries, samples, per_batch, spec, batch_size)),
                )
            )
    report.batches_per_epoch = sum(bucket.batches_per_epoch for bucket in report.buckets)


def _fixes(
    size: Size,
    entries: list[tuple[BucketAssignment, ConceptScan]],
    samples: int,
    per_batch: int,
    spec: BucketSpec,
    batch_size: int,
) -> list[str]:
    """Concrete ways out, with numbers, for a bucket that loses samples."""
    missing = per_batch - samples % per_batch
    if samples >= per_batch:  # only a partial last batch is lost, and different samples each epoch
        return [f"add {missing} more samples of about {size[0]}x{size[1]} to fill the last batch"]
    fixes = []
    smaller_batch = samples  # a batch is one process's: the process count does not change what fits
    if 1 <= smaller_batch < batch_size:
        fixes.append(f"lower batch_size to {smaller_batch}")
    concepts = {scan.name: scan for _, scan in entries}
    if len(concepts) == 1:
        scan = next(iter(concepts.values()))
        repeats = math.ceil(per_batch / len(entries))
        fixes.append(f"raise repeats of '{scan.name}' from {scan.repeats} to {repeats}")
    fixes.append(f"add {missing} more samples of about {size[0]}x{size[1]} (images x repeats)")
    if spec.enabled:
        fixes.append(
            "crop these images to a more common aspect ratio, or turn bucketing off "
            f"(everything centre-cropped to {spec.resolution}x{spec.resolution})"
        )
    return fixes


def _fill_steps(report: PreflightReport, epochs: int, max_steps: int | None) -> None:
    if max_steps is not None:
        report.total_steps = max_steps
        report.epochs = math.ceil(max_steps / report.steps_per_epoch) if report.steps_per_epoch else 0
    else:
        report.epochs = epochs
        report.total_steps = epochs * report.steps_per_epoch
