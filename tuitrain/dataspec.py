"""The config's view of the dataset engine: one place turns config sections into its specs.

`tuitrain check`, the TUI and the trainer all go through here, so what the
pre-flight report shows is exactly what the trainer reads.
"""

from __future__ import annotations

from pathlib import Path

from tuitrain.config import Config
from tuitrain.config.io import resolve_path
from tuitrain.dataset import BucketSpec, ConceptScan, ConceptSpec, PreflightReport, preflight


def concept_specs(config: Config, config_dir: Path) -> list[ConceptSpec]:
    """The enabled concepts (enabled = false ones are left out everywhere: report, review, trainer)."""
    return [
        ConceptSpec(
            path=resolve_path(c.path, config_dir),
            caption=c.caption,
            repeats=c.repeats,
            caption_extension=c.caption_extension,
            prompt_file=Path(c.prompt_file) if c.prompt_file else None,
            instance_prompt=c.instance_prompt,
            recursive=c.recursive,
            name=c.name,
            mask_suffix=config.data.mask_suffix,
            role=c.role,
            loss_weight=c.loss_weight,
            samples_per_epoch=c.samples_per_epoch,
            resolution=c.resolution,
            caption_dropout=c.caption_dropout,
            flip=c.flip,
            crop_jitter=c.crop_jitter,
            references=resolve_path(c.references, config_dir) if c.references else None,
            class_images=c.class_images,
        )
        for c in config.data.concepts
        if c.enabled
    ]


def disabled_concepts(config: Config, config_dir: Path) -> list[str]:
    """Display names of the concepts set enabled = false, for the report to say they are left out."""
    return [
        ConceptSpec(path=resolve_path(c.path, config_dir), name=c.name).display_name
        for c in config.data.concepts
        if not c.enabled
    ]


def bucket_spec(config: Config) -> BucketSpec:
    d = config.data
    return BucketSpec(resolution=d.resolution, step=d.bucket_step, max_aspect=d.max_aspect_ratio, enabled=d.bucketing)


def config_preflight(
    config: Config, config_dir: Path, *, full_check: bool = True, cache_dir: Path | None = None
) -> PreflightReport:
    """The data report of a run, as `check RUN` prints it and the review's `r` shows it: the same epochs,
    accumulation and max_steps, so both say the same number of steps."""
    t = config.training
    return preflight(
        concept_specs(config, config_dir),
        bucket_spec(config),
        batch_size=t.batch_size,
        gradient_accumulation=t.gradient_accumulation,
        # distributed.processes: each step takes a batch from every process (0, all GPUs: unknown without
        # asking CUDA, which check does not load; counted as the listed GPUs, else one).
        num_gpus=config.distributed.processes or len(config.distributed.gpu_ids) or 1,
        epochs=t.epochs,
        max_steps=t.max_steps,
        cache_dir=cache_dir,
        full_check=full_check,
        disabled=disabled_concepts(config, config_dir),
        validation_split=config.data.validation_split,
    )


def concept_scans(config: Config, config_dir: Path) -> list[ConceptScan]:
    """Every concept scanned, its images cut to the usable ones (dataset.usable, verdicts cached like
    check's): what the trainer will read, so a caption only a rejected image has does not count."""
    from tuitrain.dataset import scan_concept
    from tuitrain.dataset.usable import judge

    scans = [scan_concept(spec) for spec in concept_specs(config, config_dir)]
    return judge(scans, bucket_spec(config), cache_dir=None).scans


def captions_without_token(scans: list[ConceptScan], token: str) -> tuple[int, int]:
    """(captions that lack `token`, all captions) over every concept, as the trainer would read them.

    A textual-inversion run learns only where its token appears; a run whose captions never
    mention it would train nothing, so `check` and `train` refuse it before loading a model.
    """
    import re

    word = re.compile(r"(?<![\w<>-])" + re.escape(token) + r"(?![\w<>-])")
    missing = total = 0
    for scan in scans:
        texts = scan.prompts if scan.spec.caption == "prompt-file" else [image.caption or "" for image in scan.images]
        total += len(texts)
        missing += sum(1 for text in texts if not word.search(text))
    return missing, total


def mask_coverage(scans: list[ConceptScan], suffix: str) -> tuple[int, int, list[str]]:
    """(images with a mask file beside them, all images, why some masks cannot be used): what
    masked_loss and inpainting will read, checked by the rules the trainer applies."""
    from tuitrain.dataset.masks import find_mask

    with_mask = total = 0
    problems: list[str] = []
    for scan in scans:
        for image in scan.images:
            total += 1
            mask = find_mask(image, suffix)
            if mask is not None:
                with_mask += 1
                if mask.problem:
                    problems.append(mask.problem)
    return with_mask, total, problems
