"""Helpers shared by the commands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tuitrain.cli.main import UserError
from tuitrain.runs import RunDir, find_run, resolve_workspace
from tuitrain.runs.workspace import RunNotFound


def workspace(args: argparse.Namespace) -> Path:
    return resolve_workspace(getattr(args, "workspace", None))


def target(args: argparse.Namespace) -> tuple[RunDir | None, Path]:
    """The RUN|CONFIG argument as (run or None, config path); a bad one is a UserError."""
    from tuitrain.dataset.paths import path_text_problem, shown_path

    problem = path_text_problem(args.target)  # a NUL, an unknown ~user, a 300-byte name: one line, not a traceback
    if problem:
        raise UserError(f"{problem}, got \"{shown_path(args.target)}\"")
    try:
        return find_run(args.target, workspace(args))
    except RunNotFound as exc:
        raise UserError(str(exc)) from None


def tui_settings(flag: str | None = None):  # type: ignore[no-untyped-def]
    """(the user's settings, a ProtocolResolver already asking the terminal on a thread).

    Every command that opens the TUI starts here, so the terminal's answers about image
    support arrive while Textual imports; `flag` is a command-line --image-protocol.
    """
    from tuitrain.settings import load_settings
    from tuitrain.tui.image_protocol import ProtocolResolver, requested_protocol

    settings = load_settings()
    try:
        requested = requested_protocol(settings.settings.image_protocol, flag)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    return settings, ProtocolResolver(requested)


def confirmed(question: str) -> bool:
    """Ask a y/N question on the terminal (for what cannot be undone); anything but y/yes is no."""
    print(f"{question} This cannot be undone. [y/N] ", end="", flush=True)
    return sys.stdin.readline().strip().lower() in ("y", "yes")
