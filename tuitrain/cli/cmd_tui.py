"""`tuitrain` with no command: the TUI home screen."""

from __future__ import annotations

import argparse

from tuitrain.cli.common import workspace


def run(args: argparse.Namespace) -> int:
    from tuitrain.tui.app import TuitrainApp

    TuitrainApp(workspace(args)).run()
    return 0
