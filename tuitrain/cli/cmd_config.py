"""`tuitrain config RUN|CONFIG`: edit a config in a form generated from the schema."""

from __future__ import annotations

import argparse

from tuitrain.cli.common import target


def run(args: argparse.Namespace) -> int:
    _run_dir, config_path = target(args)
    from tuitrain.config.io import read_toml

    read_toml(config_path)  # a missing file or a TOML syntax error is reported here, not in a form
    from tuitrain.tui.config_editor.app import ConfigEditorApp

    saved = ConfigEditorApp(config_path).run()
    if saved:
        print(f"Saved {config_path}. Check it with: tuitrain check {args.target}")
    return 0
