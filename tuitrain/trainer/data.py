"""Training samples from the dataset engine, in bucketed batches, in a resumable order.

The order of an epoch is a pure function of (seed, epoch), so a resumed run only
needs to know the epoch and how many batches of it were done.
"""

from __future__ import annotations

import dataclasses
import random
import sys
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from tuitrain.config import Config
from tuitrain.dataset import (
    CaptionOptions,
    ConceptScan,
    ImageInfo,
    apply_caption_options,
    assign_buckets,
    load_rgb,
    scan_concept,
)
from tuitrain.config.io import resolve_path
from tuitrain.dataset.balance import bucket_quotas, concept_targets
from tuitrain.dataset.buckets import BucketAssignment
from tuitrain.dataset.holdout import held_out
from tuitrain.dataset.masks import MaskFile, find_mask
from tuitrain.dataset.references import ReferenceFile, find_reference
from tuitrain.dataset.scan import FileProblem
from tuitrain.dataset.spec import ConceptSpec
from tuitrain.dataset.usable import judge, skipped_line
from tuitrain.dataspec import bucket_spec, concept_specs
from tuitrain.trainer.errors import TrainingError


@dataclass(frozen=True)
class Sample:
    """One training image (repeats are separate entries in the epoch order, not here)."""

    index: int
    path: Path
    concept: int
    assignment: BucketAssignment
    mtime_ns: int
    file_size: int
    mask: MaskFile | None = None
    flip: bool = False  # its concept's flip / crop_jitter (the concept's own, else [data]'s)
    crop_jitter: bool = False
    loss_weight: float = 1.0  # its concept's loss_weight: multiplies the sample's loss
    reference: ReferenceFile | None = None  # editing models: the image it is made from (concept.references)


class EpochRepeats(list[int]):
    """How often each sample is seen in an epoch (a list of ints, by sample index), where concepts
    balanced by samples (dataset.balance) add visits that move between epochs.

    The list holds every epoch's fixed part; `extras` are (sample indices, how many of them get one
    more visit), one per balanced concept and bucket, drawn anew each epoch from (seed, epoch), so the
    buckets' sizes, and with them the steps of an epoch, never change."""

    def __init__(self, counts: list[int], extras: list[tuple[list[int], int]]) -> None:
        super().__init__(counts)
        self.extras = extras

    def for_epoch(self, seed: int, epoch: int) -> list[int]:
        counts = list(self)
        for number, (indices, extra) in enumerate(self.extras):
            rng = random.Random(f"{seed}:{epoch}:balance:{number}")
            for index in rng.sample(indices, extra):
                counts[index] += 1
        return counts


class TrainingData:
    """The scanned concepts of a config and their samples: the images `tuitrain check` calls usable.

    The same rule decides (dataset.usable.judge, every image decoded once and the verdict
    cached like check's), so a file check rejects is skipped here, never met mid-run.
    `skipped` lists them; `warn` (default: stderr) gets one line saying how many.
    """

    def __init__(self, config: Config, config_dir: Path, cache_dir: Path | None = None,
                 warn: Callable[[str], None] | None = None) -> None:
        self.config = config
        self.bucket_spec = bucket_spec(config)
        self.scans: list[ConceptScan] = []
        self.samples: list[Sample] = []
        self.repeats: EpochRepeats = EpochRepeats([], [])
        self._images: list[ImageInfo] = []  # by sample index: captions are looked up on every step
        suffix = config.data.mask_suffix
        scans = [scan_concept(spec, cache_dir=cache_dir) for spec in concept_specs(config, config_dir)]
        verdict = judge(scans, self.bucket_spec, cache_dir=cache_dir)
        self.skipped: list[FileProblem] = verdict.rejected
        if self.skipped:
            (warn or _to_stderr)(skipped_line(len(self.skipped)))
        # Held out of training, scored as the eval loss (trainer/evaluation.py); dataset.holdout says which.
        self.held_out: list[Sample] = []
        self._held_images: dict[Path, ImageInfo] = {}
        roles = {resolve_path(c.path, config_dir): c.role for c in config.data.concepts}
        for ci, scan in enumerate(verdict.scans):  # scan.images: the usable ones (mask files are never images)
            self.scans.append(scan)
            held = held_out(roles.get(scan.spec.path, "train"), [i.path for i in scan.images], scan.spec.path,
                            config.data.validation_split)
            buckets = self.bucket_spec.for_concept(scan.spec)  # a concept may bucket at its own resolution
            folder = scan.spec.references  # editing models: judge kept only images with a usable reference
            for image, assignment in zip(scan.images, assign_buckets(scan.images, buckets)):
                into = self.held_out if image.path in held else self.samples
                into.append(
                    Sample(len(into), image.path, ci, assignment, image.mtime_ns, image.file_size,
                           find_mask(image, suffix), *_concept_settings(scan.spec, config),
                           reference=find_reference(image, folder) if folder is not None else None)
                )
                if into is self.held_out:
                    self._held_images[image.path] = image
                else:
                    self._images.append(image)
        self.repeats = _repeats(self.samples, self.scans)
        if config.training.masked_loss:
            self.check_masks()  # inpainting models: the trainer checks once it knows the model is one
        self.caption_options = CaptionOptions(
            shuffle_tags=config.data.shuffle_tags,
            keep_tags=config.data.keep_tags,
            dropout=config.data.caption_dropout,
        )
        # A concept's own caption_dropout replaces [data]'s for its images.
        self.concept_caption_options = [
            self.caption_options if scan.spec.caption_dropout is None
            else dataclasses.replace(self.caption_options, dropout=scan.spec.caption_dropout)
            for scan in self.scans
        ]

    def check_masks(self) -> None:
        """Stop (TrainingError) when a mask file that would be used cannot be: named, with the reason."""
        problems = [s.mask.problem for s in self.samples if s.mask is not None and s.mask.problem]
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise TrainingError(problems[0] + more)

    def base_caption(self, sample: Sample, rng: random.Random) -> str:
        """The caption before shuffling/dropout (drawn from the prompt file when that is the source)."""
        return self.scans[sample.concept].caption_for(self._images[sample.index], rng)

    def held_out_caption(self, sample: Sample) -> str:
        """A held-out image's caption as written (a prompt file's first draw of a fixed rng): no shuffling or
        dropout, so the eval loss sees the same text every time."""
        return self.scans[sample.concept].caption_for(self._held_images[sample.path], random.Random(0))

    def caption(self, sample: Sample, rng: random.Random) -> str:
        return apply_caption_options(self.base_caption(sample, rng), self.concept_caption_options[sample.concept], rng)

    @property
    def any_caption_dropout(self) -> bool:
        """Whether some sample's caption may be dropped (which keeps text embeddings out of the cache)."""
        return any(options.dropout > 0 for options in self.concept_caption_options)


def _concept_settings(spec: ConceptSpec, config: Config) -> tuple[bool, bool, float]:
    """(flip, crop_jitter, loss_weight) of a concept's samples: its own values, unset ones from [data]."""
    d = config.data
    flip = d.flip if spec.flip is None else spec.flip
    jitter = d.crop_jitter if spec.crop_jitter is None else spec.crop_jitter
    return flip, jitter, spec.loss_weight


def _repeats(samples: list[Sample], scans: list[ConceptScan]) -> EpochRepeats:
    """Every sample's visits per epoch: its concept's repeats, or a balanced concept's samples spread
    over its buckets (dataset.balance, as the pre-flight counts them) with the remainder rotating."""
    targets = concept_targets(scans)
    counts = [max(scans[s.concept].repeats, 0) for s in samples]
    extras: list[tuple[list[int], int]] = []
    members: dict[tuple[int, tuple[int, int]], list[int]] = defaultdict(list)
    for sample in samples:
        if targets[sample.concept] is not None:
            members[sample.concept, sample.assignment.bucket].append(sample.index)
    for ci, target in enumerate(targets):
        if target is None:
            continue
        buckets = {bucket: len(indices) for (c, bucket), indices in members.items() if c == ci}
        for bucket, quota in bucket_quotas(buckets, target).items():
            indices = members[ci, bucket]
            base, extra = divmod(quota, len(indices))
            for index in indices:
                counts[index] = base
            if extra:
                extras.append((indices, extra))
    return EpochRepeats(counts, extras)


def _to_stderr(line: str) -> None:
    print(f"warning: {line}", file=sys.stderr, flush=True)


def epoch_batches(
    samples: Sequence[Sample], repeats: Sequence[int], batch_size: int, seed: int, epoch: int
) -> list[list[int]]:
    """The batches of one epoch: same-bucket sample indices, shuffled, remainders dropped.

    A bucket holding n samples (with repeats) gives n // batch_size batches; the
    pre-flight report names the images that this drops.
    """
    rng = random.Random(f"{seed}:{epoch}")
    by_bucket: dict[tuple[int, int], list[int]] = defaultdict(list)
    if isinstance(repeats, EpochRepeats):  # balanced concepts: this epoch's share of the extra visits
        repeats = repeats.for_epoch(seed, epoch)
    for sample, count in zip(samples, repeats):
        by_bucket[sample.assignment.bucket].extend([sample.index] * count)
    batches: list[list[int]] = []
    for bucket in sorted(by_bucket):
        items = by_bucket[bucket]
        rng.shuffle(items)
        for start in range(0, len(items) - batch_size + 1, batch_size):
            batches.append(items[start : start + batch_size])
    rng.shuffle(batches)
    return batches


def steps_per_epoch(samples: Sequence[Sample], repeats: Sequence[int], batch_size: int, accumulation: int) -> int:
    batches = len(epoch_batches(samples, repeats, batch_size, seed=0, epoch=0))
    return batches // accumulation


def _fit(sample: Sample, image: Image.Image, flip: bool, jitter: tuple[int, int] | None,
         resample: Image.Resampling) -> Image.Image:
    """Crop (at `jitter` when given) and resize to the bucket, flip: the one geometry images and masks share.

    The crop is taken in the original's pixels and only it is resampled (Image.resize's
    box=), which is what resizing the whole image to scaled_size and cutting scaled_crop
    out of it gives, without ever making the whole scaled image: for a long strip that
    would be gigabytes.
    """
    a = sample.assignment
    left, top = a.scaled_crop[:2] if jitter is None else jitter
    sx, sy = image.width / a.scaled_size[0], image.height / a.scaled_size[1]
    right, bottom = min(image.width, (left + a.bucket[0]) * sx), min(image.height, (top + a.bucket[1]) * sy)
    box = (left * sx, top * sy, right, bottom)
    image = image.resize(a.bucket, resample, box=box)
    if flip:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return image


def _training_error(message: str) -> Exception:
    return TrainingError(message)


def load_pixels(
    sample: Sample, *, flip: bool = False, jitter: tuple[int, int] | None = None
) -> torch.Tensor:
    """The image exactly as the trainer sees it: cropped to its bucket and resized, in [-1, 1], CHW.

    `jitter` moves the crop's top-left inside the resized image (crop_jitter). The file
    was judged usable when the run started; one that no longer decodes fails naming itself,
    one re-saved at another size is fitted to the geometry its bucket was planned for.
    """
    try:
        original = load_rgb(sample.path)
    except Exception as exc:  # any decoder failure: the file changed after the pre-flight's verdict
        raise _training_error(
            f"cannot read {sample.path}: {exc} (it decoded when the run started: did it change? "
            "`tuitrain check` on this run says what is wrong with it now)"
        ) from None
    if original.size != sample.assignment.original_size:  # re-saved during the run: keep its planned crop
        original = original.resize(sample.assignment.original_size, Image.Resampling.LANCZOS)
    image = _fit(sample, original, flip, jitter, Image.Resampling.LANCZOS)
    data = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
    pixels = data.view(image.height, image.width, 3).permute(2, 0, 1).float()
    return pixels / 127.5 - 1.0


def load_reference(sample: Sample, *, flip: bool = False, jitter: tuple[int, int] | None = None) -> torch.Tensor:
    """The sample's reference image with the same resize, crop and flip as its pixels: [3, H, W] in [-1, 1].
    Resized to the image's own size first (the pair need only share an aspect ratio, dataset.references)."""
    if sample.reference is None:
        raise ValueError(f"{sample.path} has no reference image")
    try:
        original = load_rgb(sample.reference.path)
    except Exception as exc:  # its header was checked when the run started
        raise _training_error(f"cannot read the reference {sample.reference.path}: {exc}; fix or remove it") from None
    image = _fit(sample, original.resize(sample.assignment.original_size, Image.Resampling.LANCZOS), flip, jitter,
                 Image.Resampling.LANCZOS)
    data = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
    return data.view(image.height, image.width, 3).permute(2, 0, 1).float() / 127.5 - 1.0


def load_mask(sample: Sample, *, flip: bool = False, jitter: tuple[int, int] | None = None) -> torch.Tensor:
    """The sample's mask file with the same resize, crop and flip as its pixels: [1, H, W] in [0, 1] (white = 1)."""
    if sample.mask is None:
        raise ValueError(f"{sample.path} has no mask file")
    if sample.mask.problem:
        raise TrainingError(sample.mask.problem)
    a = sample.assignment
    # Resized to the image's own size first, so a mask of the same aspect at another size lines up.
    # Transparent pixels are "not masked": editors export white strokes on a transparent layer.
    try:
        mask = load_rgb(sample.mask.path, background=(0, 0, 0)).convert("L")
    except Exception as exc:  # its header was checked (dataset.masks), its pixels are decoded only here
        raise _training_error(f"cannot read the mask {sample.mask.path}: {exc}; fix or remove it") from None
    mask = mask.resize(a.original_size, Image.Resampling.BILINEAR)
    mask = _fit(sample, mask, flip, jitter, Image.Resampling.BILINEAR)
    data = torch.frombuffer(bytearray(mask.tobytes()), dtype=torch.uint8)
    return data.view(1, mask.height, mask.width).float() / 255.0


def random_crop_origin(sample: Sample, rng: random.Random) -> tuple[int, int]:
    a = sample.assignment
    return (rng.randint(0, a.scaled_size[0] - a.bucket[0]), rng.randint(0, a.scaled_size[1] - a.bucket[1]))


def shard(batches: list[list[int]], rank: int, processes: int) -> list[list[int]]:
    """Process `rank`'s share of an epoch's batches: every `processes`-th from `rank`, cut so every
    process gets as many (a step waits for all of them). One process gets `batches` unchanged."""
    if processes == 1:
        return batches
    return batches[rank::processes][: len(batches) // processes]
