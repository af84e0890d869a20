"""`tuitrain check`: is this config valid, and what will the trainer see in the data?

Exit codes: 0 the run can train, 1 it cannot (the reasons are printed), 2 the
config itself is wrong (one line per mistake, naming the key).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tuitrain.cli.common import target
from tuitrain.cli.main import EXIT_CANNOT_TRAIN, UserError
from tuitrain.config import Config, load_config
from tuitrain.config.io import resolve_path


def config_readiness(config: Config, config_dir: Path) -> list[str]:
    """What keeps a valid config from training (besides the data itself)."""
    problems: list[str] = []
    if not config.model.base:
        problems.append("model.base: not set (a hub id, diffusers folder or .safetensors file)")
    else:
        base = config.model.base
        path = resolve_path(base, config_dir)
        looks_local = base.startswith((".", "/", "~")) or base.endswith(".safetensors") or base.count("/") > 1
        if looks_local and not path.exists():
            problems.append(f"model.base: {path}: no such file or folder")
    if not config.data.concepts:
        problems.append("data.concepts: no image folder configured ([[data.concepts]] path = ...)")
    for i, concept in enumerate(config.data.concepts):
        folder = resolve_path(concept.path, config_dir)
        if not folder.is_dir():
            problems.append(f"data.concepts[{i}].path: {folder}: no such folder")
    return problems


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
    problems = config_readiness(config, config_path.parent)
    if args.json:
        json.dump({"config": str(config_path), "valid": True, "summary": _summary(config), "problems": problems},
                  sys.stdout, indent=2)
        print()
    else:
        s = _summary(config)
        print(f"{config_path}: valid config")
        print(f"  {s['family']} {s['method']} at {s['resolution']}px, {s['optimizer']} lr {s['learning_rate']:g}, "
              f"rank {s['rank']} / alpha {s['alpha']:g}, batch {s['batch_size']}, "
              + (f"{s['max_steps']} steps" if s["max_steps"] else f"{s['epochs']} epochs"))
        for line in problems:
            print(f"  cannot train: {line}")
    return EXIT_CANNOT_TRAIN if problems else 0


def _check_data(args: argparse.Namespace) -> int:
    folder = Path(args.data).expanduser()
    if not folder.is_dir():
        raise UserError(f"--data {args.data}: no such folder")
    raise UserError("the data report is not built yet")
