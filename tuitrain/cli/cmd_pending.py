"""Commands whose names are fixed but whose screens or trainer are not built yet."""

from __future__ import annotations

import argparse
import sys

from tuitrain.cli.main import EXIT_USER_ERROR

_NOT_YET = {
    "train": "the trainer process",
    "attach": "the training dashboard",
    "cull": "the dataset review screen",
    "config": "the config editor",
    "demo": "the demo",
}


def run(args: argparse.Namespace) -> int:
    what = _NOT_YET[args.command]
    print(
        f"tuitrain {args.command}: {what} is not part of this version of tuitrain yet. "
        "`tuitrain check` validates configs and data today.",
        file=sys.stderr,
    )
    return EXIT_USER_ERROR
