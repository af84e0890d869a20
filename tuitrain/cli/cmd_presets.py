"""`tuitrain presets`: the built-in and user presets, one line each."""

from __future__ import annotations

import argparse
import json

from tuitrain.config.presets import list_presets, user_presets_dir


def run(args: argparse.Namespace) -> int:
    presets = list_presets()
    if args.json:
        print(json.dumps([
            {"name": p.name, "description": p.description, "source": p.source, "path": str(p.path),
             "shadows_builtin": p.shadows_builtin}
            for p in presets
        ], indent=2))
        return 0
    width = max((len(p.name) for p in presets), default=0)
    for p in presets:
        mark = ""
        if p.source == "user":
            mark = " (user, replaces the built-in one)" if p.shadows_builtin else " (user)"
        print(f"{p.name:<{width}}  {p.description}{mark}")
    print(f"\nUse one: tuitrain new NAME --preset {presets[0].name if presets else 'PRESET'} --data DIR")
    print(f"Your own presets go in {user_presets_dir()} (the config editor saves them there: ctrl+n)")
    return 0
