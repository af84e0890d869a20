"""`tuitrain new NAME --preset P`: a run directory with a complete, valid config.toml."""

from __future__ import annotations

import argparse
from pathlib import Path

from tuitrain.cli.common import workspace
from tuitrain.cli.main import UserError
from tuitrain.runs.create import RunNotCreated, create_run


def run(args: argparse.Namespace) -> int:
    from tuitrain.dataset.paths import path_text_problem, shown_path

    problem = path_text_problem(args.data or "")  # a NUL, an unknown ~user, a 300-byte name: one line, not a traceback
    if problem:
        raise UserError(f"--data: {problem}, got \"{shown_path(args.data)}\"")
    if args.data and not Path(args.data).expanduser().is_dir():
        raise UserError(f"--data {args.data}: no such folder")
    try:
        run_dir = create_run(workspace(args), args.name, args.preset, args.data or "", args.base or "", args.overrides)
    except RunNotCreated as exc:
        raise UserError(str(exc).replace("base model ", "--base ")) from None
    from tuitrain.config import load_config

    config = load_config(run_dir.config)
    print(f"Created run {run_dir.name} at {run_dir.root}")
    if not config.model.base:
        print(f"  model.base is not set yet: tuitrain config {run_dir.name}, or --set model.base=...")
    if not config.data.concepts:
        print(f"  no data folder yet: add one with tuitrain config {run_dir.name}")
    elif len(config.data.concepts) > 1:  # a kohya parent, split as check --data splits it
        from tuitrain.dataspec import concept_specs

        specs = concept_specs(config, run_dir.root)
        names = ", ".join(f"{spec.display_name} x{spec.effective_repeats}" for spec in specs if spec.role == "train")
        print(f"  data: {len(specs)} concepts, one per sub-folder: {names}")
        reg = [spec.display_name for spec in specs if spec.role == "regularisation"]
        if reg:  # kohya_ss's reg/ folder
            print(f"  regularisation (reg/): {', '.join(reg)}, balanced to the train samples per epoch as kohya does")
    print(f"Next: tuitrain check {run_dir.name}   then   tuitrain train {run_dir.name}")
    return 0
