"""`tuitrain demo [--headless]`: a demo run on generated data and a tiny local model, offline, on CPU.

Without --headless it opens the TUI on the demo run's data review, with a hint for
the next steps; with --headless it trains the demo and prints where the LoRA is.
"""

from __future__ import annotations

import argparse

from tuitrain.cli.common import tui_settings, workspace
from tuitrain.cli.main import UserError


def run(args: argparse.Namespace) -> int:
    from tuitrain.runs.create import RunNotCreated

    ws = workspace(args)
    try:
        if args.headless:
            from tuitrain.demo.headless import run_headless

            return run_headless(ws, args.method)
        return _tui(args, ws)
    except RunNotCreated as exc:
        raise UserError(str(exc)) from None


def _tui(args: argparse.Namespace, ws) -> int:  # type: ignore[no-untyped-def]
    from tuitrain.demo.setup import NOTICE, prepare_demo
    print(NOTICE)
    demo = prepare_demo(ws, method=args.method)
    settings, resolver = tui_settings()
    from tuitrain.demo.app import DemoApp

    DemoApp(ws, demo.run, image_protocol=resolver.result(), settings=settings).run()
    return 0
