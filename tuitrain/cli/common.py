"""Helpers shared by the commands."""

from __future__ import annotations

import argparse
from pathlib import Path

from tuitrain.cli.main import UserError
from tuitrain.runs import RunDir, find_run, resolve_workspace
from tuitrain.runs.workspace import RunNotFound


def workspace(args: argparse.Namespace) -> Path:
    return resolve_workspace(getattr(args, "workspace", None))


def target(args: argparse.Namespace) -> tuple[RunDir | None, Path]:
    """The RUN|CONFIG argument as (run or None, config path); a bad one is a UserError."""
    try:
        return find_run(args.target, workspace(args))
    except RunNotFound as exc:
        raise UserError(str(exc)) from None
