"""The `tuitrain` command: argument parsing and dispatch.

Kept import-light on purpose: `tuitrain --help` must start fast, and no command
but `train` may import torch. Each command lives in its own module, imported only
when that command runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from tuitrain import __version__

EXIT_OK = 0
EXIT_CANNOT_TRAIN = 1
EXIT_USER_ERROR = 2


class UserError(Exception):
    """A mistake of the user's (bad argument, missing file): one line, exit code 2, no traceback."""


def _add_set(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one option, e.g. --set training.learning_rate=2e-4 (repeatable)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tuitrain",
        description="Train LoRAs, embeddings and fine-tunes of diffusion models from the terminal. "
        "With no command, opens the TUI on the runs of the workspace.",
    )
    parser.add_argument("--version", action="version", version=f"tuitrain {__version__}")
    parser.add_argument(
        "--workspace",
        metavar="DIR",
        help="folder holding one directory per run (default: $TUITRAIN_WORKSPACE, else ~/tuitrain-runs)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("new", help="create a run from a preset")
    p.add_argument("name", help="run name (letters, digits, '.', '_', '-')")
    p.add_argument("--preset", help="preset to start from (see `tuitrain presets`)")
    p.add_argument("--data", metavar="DIR", help="folder of training images")
    p.add_argument("--base", metavar="MODEL", help="base model: hub id, diffusers folder or .safetensors file")
    _add_set(p)

    p = sub.add_parser("check", help="validate a config and report what the trainer will see in the data")
    p.add_argument("target", nargs="?", metavar="RUN|CONFIG", help="run name, run directory or config file")
    p.add_argument("--data", metavar="DIR", help="check a folder of images without a config")
    p.add_argument("--resolution", type=int, metavar="N", help="training resolution (with --data; default 512)")
    p.add_argument("--batch-size", type=int, metavar="N", help="batch size (with --data; default 1)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    _add_set(p)

    p = sub.add_parser("train", help="train a run (foreground, or --detach)")
    p.add_argument("target", metavar="RUN|CONFIG")
    p.add_argument("--detach", action="store_true", help="start the trainer in the background and return")
    p.add_argument("--more-epochs", type=int, metavar="N",
                   help="a finished run: continue it from its final backup for N more epochs")
    p.add_argument("--more-steps", type=int, metavar="N", help="a finished run: continue it for N more steps")
    p.add_argument("--as-new", metavar="NAME", help="start a new run named NAME from this run's config")
    _add_set(p)

    p = sub.add_parser("attach", help="open the live dashboard of a run")
    p.add_argument("target", metavar="RUN")

    p = sub.add_parser("cull", help="review a folder of images: cull, restore, fix captions")
    p.add_argument("folder", metavar="DIR")
    p.add_argument("--resolution", type=int, metavar="N", help="training resolution for bucket flags (default 512)")
    p.add_argument("--batch-size", type=int, metavar="N", help="batch size for bucket flags (default 1)")
    p.add_argument("--references", metavar="REFS",
                   help="edit pairs (FLUX.1 Kontext): a folder of reference images, paired with DIR's by file name")
    p.add_argument(
        "--image-protocol",
        choices=["auto", "kitty", "sixel", "halfcell", "unicode"],
        help="how pictures are drawn (default: the settings file, else auto)",
    )
    p.add_argument("--list-trash", action="store_true", help="list what is in the trash, without the TUI")
    p.add_argument("--undo", action="store_true", help="restore the most recently culled image, without the TUI")
    p.add_argument("--empty-trash", action="store_true", help="delete the trash for good (asks first)")
    p.add_argument("--yes", action="store_true", help="with --empty-trash: do not ask")

    p = sub.add_parser("config", help="edit a run's config in a form")
    p.add_argument("target", metavar="RUN|CONFIG")

    p = sub.add_parser("presets", help="list the presets")
    p.add_argument("--json", action="store_true", help="print them as JSON")

    sub.add_parser("runs", help="list the runs of the workspace with their state")

    p = sub.add_parser("delete", help="move runs to the workspace's trash (tuitrain delete --undo brings them back)")
    p.add_argument("runs", nargs="*", metavar="RUN", help="run(s) to delete; with --undo: which one to restore")
    p.add_argument("--list-trash", action="store_true", help="list the deleted runs")
    p.add_argument("--undo", action="store_true", help="restore the most recently deleted run (or RUN)")
    p.add_argument("--empty-trash", action="store_true", help="delete the deleted runs for good (asks first)")
    p.add_argument("--yes", action="store_true", help="with --empty-trash: do not ask")

    p = sub.add_parser("pick", help="make one save the run's output: output/NAME.safetensors (the final is kept)")
    p.add_argument("target", metavar="RUN")
    p.add_argument("save", metavar="STEP|best|last", help="the save's step, best (lowest eval loss) or last")

    p = sub.add_parser("sample", help="draw a save at several LoRA strengths on the base model (a strength grid)")
    p.add_argument("target", metavar="RUN")
    p.add_argument("--save", default="last", metavar="STEP|best|last", help="which save (default: last)")
    p.add_argument("--scale", metavar="S,S,..", help="strengths (default: 0.6,0.8,1.0; an embedding: 1)")
    p.add_argument("--prompt", action="append", default=[], metavar="TEXT",
                   help="a prompt (repeatable; default: the run's sample prompts)")
    p.add_argument("--seeds", metavar="N,N,..", help="seeds, one column each per prompt (default: each prompt's)")

    p = sub.add_parser("import", help="turn a kohya, OneTrainer or SimpleTuner config into a tuitrain config")
    p.add_argument("file", metavar="FILE", help="kohya TOML/JSON, kohya_ss JSON, OneTrainer JSON or SimpleTuner "
                   "config.json (or multidatabackend.json)")
    p.add_argument("--out", metavar="CONFIG", help="write the config here (default: print it)")
    p.add_argument("--force", action="store_true", help="with --out: replace an existing file")
    p.add_argument("--data-config", metavar="FILE",
                   help="SimpleTuner: the multidatabackend.json (default: the one config.json names)")
    _add_set(p)

    p = sub.add_parser("demo", help="a demo run on generated data and a tiny model, offline on CPU")
    p.add_argument("--headless", action="store_true", help="train the demo without the TUI")
    p.add_argument("--method", default="lora", choices=("lora", "lokr", "loha", "embedding", "finetune"),
                   help="what the demo trains (default: lora)")

    return parser


# command -> module under tuitrain.cli whose `run(args) -> int` executes it
COMMANDS = {
    None: "cmd_tui",
    "new": "cmd_new",
    "check": "cmd_check",
    "train": "cmd_train",
    "attach": "cmd_attach",
    "cull": "cmd_cull",
    "config": "cmd_config",
    "presets": "cmd_presets",
    "runs": "cmd_runs",
    "delete": "cmd_delete",
    "demo": "cmd_demo",
    "pick": "cmd_pick",
    "sample": "cmd_sample",
    "import": "cmd_import",
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    module = importlib.import_module(f"tuitrain.cli.{COMMANDS[args.command]}")
    from tuitrain.config.errors import ConfigError, one_line, shorten

    try:
        return int(module.run(args) or 0)
    except ConfigError as exc:
        for line in exc.lines():
            print(line, file=sys.stderr)
        return EXIT_USER_ERROR
    except UserError as exc:  # often echoes an argument: one line, of bounded length, whatever it holds
        print(f"tuitrain: {shorten(one_line(str(exc)), 300)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
