"""`tuitrain import FILE [--out config.toml]`: a kohya, OneTrainer or SimpleTuner config as a tuitrain config.

Prints the config (or writes it with --out, never over an existing file) and, on stderr, every key
of the source it could not map, each with the reason where one is known.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tuitrain.cli.main import UserError


def run(args: argparse.Namespace) -> int:
    from tuitrain.config import parse_config
    from tuitrain.config.io import atomic_write_text
    from tuitrain.dataset.paths import path_text_problem, shown_path
    from tuitrain.importers import ImportProblem, import_file, render

    for flag, value in (("FILE", args.file), ("--out", args.out), ("--data-config", args.data_config)):
        problem = path_text_problem(value or "")
        if problem:
            raise UserError(f"{flag}: {problem}, got \"{shown_path(value)}\"")
    source = Path(args.file).expanduser()
    if not source.is_file():
        raise UserError(f"{args.file}: no such file")
    data_config = Path(args.data_config).expanduser() if args.data_config else None
    if data_config is not None and not data_config.is_file():
        raise UserError(f"--data-config {args.data_config}: no such file")
    out = Path(args.out).expanduser() if args.out else None
    if out is not None and out.exists() and not args.force:
        raise UserError(f"--out {args.out}: already exists (--force replaces it)")
    try:
        result = import_file(source, data_config)
    except ImportProblem as exc:
        raise UserError(str(exc)) from None
    if args.overrides:  # checked first: a bad --set is one line naming it (main prints the ConfigError)
        from tuitrain.config.overrides import apply_overrides

        parse_config(result.table, overrides=args.overrides)
        result.table = apply_overrides(result.table, args.overrides)
    text = render(result)
    if out is None:
        sys.stdout.write(text)
    else:
        atomic_write_text(out, text)
        print(f"Wrote {out} ({result.trainer}); check it with: tuitrain check {out}", file=sys.stderr)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    if result.unmapped:
        print(f"not mapped ({len(result.unmapped)}):", file=sys.stderr)
        for item in result.unmapped:
            print(f"  {item.line()}", file=sys.stderr)
    return 0
