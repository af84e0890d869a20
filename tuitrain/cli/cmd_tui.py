"""`tuitrain` with no command: the TUI on the runs of the workspace."""

from __future__ import annotations

import argparse

from tuitrain.cli.common import tui_settings, workspace


def run(args: argparse.Namespace) -> int:
    settings, resolver = tui_settings()
    from tuitrain.tui.app import TuitrainApp

    TuitrainApp(workspace(args), image_protocol=resolver.result(), settings=settings).run()
    return 0
