"""`tuitrain` with no command: the TUI on the runs of the workspace."""

from __future__ import annotations

import argparse

from tuitrain.cli.common import workspace
from tuitrain.cli.main import UserError


def run(args: argparse.Namespace) -> int:
    from tuitrain.settings import load_settings
    from tuitrain.tui.image_protocol import ProtocolResolver, requested_protocol

    settings = load_settings()
    try:
        requested = requested_protocol(settings.settings.image_protocol)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    # The terminal is asked about image support on a thread while Textual imports.
    resolver = ProtocolResolver(requested)
    from tuitrain.tui.app import TuitrainApp

    TuitrainApp(workspace(args), image_protocol=resolver.result(), settings=settings).run()
    return 0
