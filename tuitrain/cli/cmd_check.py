"""`tuitrain check`: is this config valid, and what will the trainer see in the data?

Exit codes: 0 the run can train, 1 it cannot (the reasons are printed), 2 the
config itself is wrong (one line per mistake, naming the key).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuitrain.cli.common import target
from tuitrain.cli.main import EXIT_CANNOT_TRAIN, UserError
from tuitrain.config import Config, load_config
from tuitrain.config.io import resolve_path

if TYPE_CHECKING:
    from tuitrain.dataset import ConceptScan, PreflightReport


@dataclass
class Verdict:
    """Everything `check` says about a config, decided once: `train` starts only on the same "can train"."""

    report: PreflightReport | None  # the data pre-flight (None: no concepts configured)
    problems: list[str]  # what stops the run besides the data report's own blockers, one line each
    base: str | None  # what model.base is, when it is usable
    masks: str | None  # the line on masked-loss masks
    warnings: list[str]

    @property
    def can_train(self) -> bool:
        return not self.problems and self.report is not None and self.report.can_train

    def refusals(self) -> list[str]:
        """Every reason the run cannot train, as `train` prints them."""
        data = [f"data: {line}" for line in self.report.blocking] if self.report is not None else []
        return data + self.problems


def run_verdict(config: Config, config_dir: Path) -> Verdict:
    """The pre-flight of data, base model and config, as `check` reports it and `train` obeys it."""
    from tuitrain.dataspec import config_preflight

    report = config_preflight(config, config_dir) if config.data.concepts else None
    scans = report.scans if report is not None else None
    base, base_problem = base_model(config, config_dir)
    problems = ([base_problem] if base_problem else []) + config_readiness(config, config_dir, scans)
    masks, mask_problems = _masks(config, scans) if scans is not None else (None, [])
    return Verdict(report, problems + mask_problems, base, masks, config_warnings(config))


def config_readiness(config: Config, config_dir: Path, scans: list[ConceptScan] | None = None) -> list[str]:
    """What keeps a valid config from training besides the data and the base model; `scans`: the
    concepts' scans when the caller has them (the pre-flight made them), else they are made when needed."""
    from tuitrain.trainer.families import family_files

    problems: list[str] = []
    if not config.data.concepts:
        problems.append("data.concepts: no image folder configured ([[data.concepts]] path = ...)")
    for i, concept in enumerate(config.data.concepts):
        folder = resolve_path(concept.path, config_dir)
        # a concept left out (enabled = false) need not exist; one whose class images the trainer draws, not yet
        drawn = concept.class_images and not folder.exists()
        if concept.enabled and not drawn and not folder.is_dir():
            problems.append(f"data.concepts[{i}].path: {folder}: no such folder")
    dora = family_files(config.model.family).dora_problem(config)  # the trainer's own refusal, torch-free
    if dora:
        problems.append(dora)
    if config.training.method == "embedding" and config.data.concepts and not problems:
        from tuitrain.dataspec import captions_without_token, concept_scans

        token = config.embedding.token
        missing, total = captions_without_token(scans or concept_scans(config, config_dir), token)
        if total and missing == total:
            problems.append(
                f"embedding.token: no caption contains {token!r}, so the embedding would learn nothing; "
                f"write it into the captions (e.g. instance_prompt = 'photo of {token}')"
            )
    problems += family_files(config.model.family).readiness(config, config_dir)  # files the family's trainer needs
    return problems


def base_model(config: Config, config_dir: Path) -> tuple[str | None, str | None]:
    """(what model.base is, why it cannot train): the loader's own checks, from headers alone.

    The same rules `load_pipeline` applies before it reads a weight (trainer/loading/preflight.py,
    torch-free), so check and train agree on the base model, and a missing file, a LoRA given as
    the base, another family's checkpoint or an unreachable hub id is said in a second, not after
    the trainer spent half a minute importing and loading.
    """
    from tuitrain.trainer.loading.errors import ModelLoadError
    from tuitrain.trainer.loading.preflight import inspect_base

    try:
        return inspect_base(config.model, config.model.family, config_dir), None
    except ModelLoadError as exc:
        return None, str(exc).splitlines()[0]


def config_warnings(config: Config) -> list[str]:
    """What trains fine but will not come out as trained in every tool the user may load it with."""
    from tuitrain.trainer.families import family_files

    warnings: list[str] = []
    files = family_files(config.model.family)
    if config.training.method == "lora" and config.lora.use_dora and not files.dora_problem(config):
        if files.writes_dora:
            # FLUX.1's file holds DoRA as diffusers' lora_magnitude_vector (measured exact in diffusers); ComfyUI's
            # and Forge's loaders read only kohya's dora_scale, so they apply the same file without the DoRA step.
            warnings.append(
                "lora.use_dora: only diffusers applies DoRA as trained (the .safetensors holds its magnitudes as "
                "lora_magnitude_vector); ComfyUI and Forge read only kohya's dora_scale and apply the file as a "
                "plain LoRA, so it looks different there"
            )
        else:
            # Checked against the loaders' code (export/kohya_lora.py): none of the UIs applies peft's DoRA
            # (magnitude over the norm of W + dW, per output channel) as trained.
            hint = "" if config.saving.diffusers_format else " (set saving.diffusers_format = true to get it)"
            warnings.append(
                f"lora.use_dora: only diffusers applies DoRA as trained, from the NAME-diffusers folder{hint}; "
                "with the .safetensors, ComfyUI and Forge normalise by the base weight's norm, A1111 per input "
                "column and kohya ignores dora_scale, so the LoRA looks different there"
            )
    return warnings


def _method_line(config: Config) -> str:
    """The few values that say what the method trains."""
    method = config.training.method
    if method == "embedding":
        e = config.embedding
        return f"token {e.token} x {e.vectors} vectors"
    if method == "finetune":
        return "UNet + text encoders" if config.finetune.train_text_encoder else "UNet"
    lora = config.lora
    return f"{lora.type} rank {lora.rank} / alpha {lora.alpha:g}"


def _masks(config: Config, scans: list[ConceptScan]) -> tuple[str | None, list[str]]:
    """A line on the masks training.masked_loss reads, and the mask files that would stop it.
    (Whether the base is an inpainting model is only known once the trainer loads it; it checks
    its masks then.)"""
    if not config.training.masked_loss:
        return None, []
    from tuitrain.dataspec import mask_coverage

    suffix = config.data.mask_suffix
    with_mask, total, problems = mask_coverage(scans, suffix)
    if with_mask == 0:
        return (f"training.masked_loss: no image has a mask file (<image stem>{suffix}), so every image "
                "weighs the same"), []
    line = f"masks: {with_mask} of {total} images have a mask file (<image stem>{suffix}) for training.masked_loss"
    return line, [f"training.masked_loss: {problem}" for problem in problems]


def _summary(config: Config) -> dict[str, Any]:
    return {
        "family": config.model.family,
        "base": config.model.base,
        "method": config.training.method,
        "resolution": config.data.resolution,
        "optimizer": config.optimizer.name,
        "learning_rate": config.training.learning_rate,
        "epochs": config.training.epochs,
        "max_steps": config.training.max_steps,
        "batch_size": config.training.batch_size,
        "rank": config.lora.rank,
        "alpha": config.lora.alpha,
        "concepts": [c.path for c in config.data.concepts],
    }


def run(args: argparse.Namespace) -> int:
    if args.target and args.data:
        raise UserError("check takes RUN|CONFIG or --data DIR, not both")
    if not args.target and not args.data:
        raise UserError("check needs RUN|CONFIG or --data DIR (see tuitrain check --help)")
    if args.data:
        return _check_data(args)

    _, config_path = target(args)
    config = load_config(config_path, args.overrides)
    verdict = run_verdict(config, config_path.parent)
    report, problems, base_line, masks, warnings = (verdict.report, verdict.problems, verdict.base, verdict.masks,
                                                    verdict.warnings)
    can_train = verdict.can_train
    if args.json:
        json.dump({
            "config": str(config_path), "valid": True, "can_train": can_train, "summary": _summary(config),
            "problems": problems, "warnings": warnings, "data": report.to_dict() if report else None,
            "masks": masks, "base": base_line,
        }, sys.stdout, indent=2)
        print()
        return 0 if can_train else EXIT_CANNOT_TRAIN
    s = _summary(config)
    print(f"{config_path}: valid config")
    print(f"  {s['family']} {s['method']} at {s['resolution']}px, {s['optimizer']} lr {s['learning_rate']:g}, "
          f"{_method_line(config)}, batch {s['batch_size']}, "
          + (f"{s['max_steps']} steps" if s["max_steps"] else f"{s['epochs']} epochs"))
    if base_line:
        print(f"  base: {base_line}")
    if report is not None:
        _print_report(report, len(problems))
    if masks:
        print(masks)
    for line in warnings:
        print(f"warning: {line}")
    for line in problems:
        print(f"cannot train: {line}")
    return 0 if can_train else EXIT_CANNOT_TRAIN


def _print_report(report, other_problems: int = 0) -> None:  # type: ignore[no-untyped-def]
    from rich.console import Console

    # Plain text on purpose: file names may contain [brackets] that Rich would read as markup.
    Console(highlight=False, soft_wrap=True).print(report.render(other_problems=other_problems), markup=False)


def _check_data(args: argparse.Namespace) -> int:
    from tuitrain.dataset import BucketSpec, discover_concepts, preflight

    from tuitrain.dataset.paths import folder_problem, path_text_problem, shown_path

    problem = path_text_problem(args.data)
    if problem:
        raise UserError(f"--data: {problem}, got \"{shown_path(args.data)}\"")
    folder = Path(args.data).expanduser()
    if folder_problem(folder):
        raise UserError(f"--data {shown_path(args.data)}: no such folder")
    resolution = args.resolution or 512
    batch_size = args.batch_size or 1
    if resolution < 64 or resolution % 8:
        raise UserError(f"--resolution {resolution}: must be a multiple of 8, at least 64")
    if batch_size < 1:
        raise UserError(f"--batch-size {batch_size}: must be at least 1")
    report = preflight(discover_concepts(folder), BucketSpec(resolution=resolution), batch_size=batch_size)
    if args.json:
        json.dump(report.to_dict(), sys.stdout, indent=2)
        print()
    else:
        _print_report(report)
    return 0 if report.can_train else EXIT_CANNOT_TRAIN
