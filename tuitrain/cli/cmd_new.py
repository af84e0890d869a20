"""`tuitrain new NAME --preset P`: a run directory with a complete, valid config.toml."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tuitrain.cli.common import workspace
from tuitrain.cli.main import UserError
from tuitrain.config import parse_config, save_config
from tuitrain.runs import RunDir, valid_run_name

_MODEL_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".bin")


def _base_model(value: str) -> str:
    """A local path becomes absolute (the config lives elsewhere); a hub id stays as is."""
    path = Path(value).expanduser()
    if path.exists():
        return str(path.resolve())
    looks_local = value.startswith((".", "/", "~")) or value.endswith(_MODEL_SUFFIXES) or value.count("/") > 1
    if looks_local:
        raise UserError(f"--base {value}: no such file or folder")
    return value


def run(args: argparse.Namespace) -> int:
    if not valid_run_name(args.name):
        raise UserError(
            f"{args.name!r} is not a usable run name: use letters, digits, '.', '_' and '-', starting with a letter or digit"
        )
    run_dir = RunDir(workspace(args) / args.name)
    if run_dir.root.exists():
        raise UserError(f"run {args.name!r} already exists at {run_dir.root}")

    data: dict[str, Any] = {}
    if args.preset:
        data["preset"] = args.preset
    if args.base:
        data.setdefault("model", {})["base"] = _base_model(args.base)
    if args.data:
        folder = Path(args.data).expanduser()
        if not folder.is_dir():
            raise UserError(f"--data {args.data}: no such folder")
        data.setdefault("data", {})["concepts"] = [{"path": str(folder.resolve())}]

    config = parse_config(data, overrides=args.overrides)
    run_dir.create_folders()
    save_config(config, run_dir.config)

    print(f"Created run {args.name} at {run_dir.root}")
    if not config.model.base:
        print("  model.base is not set yet: tuitrain config", args.name, "or --set model.base=...")
    if not config.data.concepts:
        print("  no data folder yet: add one with tuitrain config", args.name)
    print(f"Next: tuitrain check {args.name}   then   tuitrain train {args.name}")
    return 0
