"""`tuitrain cull DIR`: the review screen on a folder, or its trash without the TUI.

--list-trash, --undo and --empty-trash act on DIR and on its concept
sub-folders (kohya-style "10_name" folders each keep their own trash), always
through the dataset engine's journal, so they agree with what the TUI did.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tuitrain.cli.common import confirmed, tui_settings
from tuitrain.cli.main import EXIT_CANNOT_TRAIN, UserError

if TYPE_CHECKING:
    from tuitrain.dataset import TrashEntry

_HEADLESS = ("list_trash", "undo", "empty_trash")


def dataset_folders(folder: Path) -> list[Path]:
    """DIR and every concept folder in it: everywhere a trash may be."""
    from tuitrain.dataset import discover_concepts

    found = [folder] + [Path(spec.path) for spec in discover_concepts(folder)]
    unique: list[Path] = []
    for path in found:
        if path not in unique:
            unique.append(path)
    return unique


def _describe(entry: TrashEntry) -> str:
    names = [Path(f.original).name for f in entry.files]
    extra = f"  (+ {', '.join(names[1:])})" if len(names) > 1 else ""
    if entry.shared:  # a.jpg culled while a.png still uses a.txt: say why the caption is not in the trash
        extra += f"  (kept in place, another image uses it: {', '.join(Path(rel).name for rel in entry.shared)})"
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry.time))
    return f"{when}  {entry.files[0].original}{extra}"


def _list(folder: Path) -> int:
    from tuitrain.dataset import list_trash

    total = 0
    for dataset in dataset_folders(folder):
        entries = list_trash(dataset)
        if not entries:
            continue
        total += len(entries)
        print(f"{dataset}: {len(entries)} culled (oldest first; --undo restores the newest)")
        for entry in entries:
            print("  " + _describe(entry))
    if total == 0:
        print(f"Nothing in the trash of {folder}")
    return 0


def _undo(folder: Path) -> int:
    from tuitrain.dataset import list_trash, undo

    newest: tuple[float, Path] | None = None
    for dataset in dataset_folders(folder):
        entries = list_trash(dataset)
        if entries and (newest is None or entries[-1].time >= newest[0]):
            newest = (entries[-1].time, dataset)
    entry = undo(newest[1]) if newest is not None else None
    if entry is None:
        print(f"Nothing to undo: the trash of {folder} is empty", file=sys.stderr)
        return EXIT_CANNOT_TRAIN
    back = [str(path) for path in entry.restored_to] or [str(entry.image)]
    print("Restored " + ", ".join(back))
    return 0


def _empty(folder: Path, yes: bool) -> int:
    from tuitrain.dataset import empty_trash, list_trash

    todo = [(dataset, list_trash(dataset)) for dataset in dataset_folders(folder)]
    todo = [(dataset, entries) for dataset, entries in todo if entries]
    images = sum(len(entries) for _, entries in todo)
    files = sum(len(entry.files) for _, entries in todo for entry in entries)
    if images == 0:
        print(f"The trash of {folder} is already empty")
        return 0
    if not yes:
        if not confirmed(f"Delete {images} culled image(s) ({files} files) for good?"):
            print("Nothing deleted.")
            return EXIT_CANNOT_TRAIN
    deleted = sum(empty_trash(dataset, confirm=True) for dataset, _ in todo)
    print(f"Deleted {deleted} file(s) from the trash")
    return 0


def run(args: argparse.Namespace) -> int:
    from tuitrain.dataset.paths import path_text_problem, shown_path

    problem = path_text_problem(args.folder)  # a NUL, an unknown ~user, a 300-byte name: one line, not a traceback
    if problem:
        raise UserError(f"{problem}, got \"{shown_path(args.folder)}\"")
    folder = Path(args.folder).expanduser()
    if not folder.is_dir():
        raise UserError(f"{args.folder}: no such folder")
    folder = folder.resolve()
    chosen = [name for name in _HEADLESS if getattr(args, name, False)]
    if len(chosen) > 1:
        raise UserError("use one of --list-trash, --undo and --empty-trash at a time")
    if args.yes and not args.empty_trash:
        raise UserError("--yes only goes with --empty-trash")
    if chosen and args.references is not None:  # the trash holds images only: references never move
        raise UserError("--references goes with the review, not with --list-trash, --undo or --empty-trash")
    if args.list_trash:
        return _list(folder)
    if args.undo:
        return _undo(folder)
    if args.empty_trash:
        return _empty(folder, args.yes)
    return _review(args, folder)


def _review(args: argparse.Namespace, folder: Path) -> int:
    if args.resolution is not None and args.resolution < 64:
        raise UserError(f"--resolution must be at least 64, got {args.resolution}")
    if args.batch_size is not None and args.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {args.batch_size}")
    references = None
    if args.references is not None:  # an editing model's pairs: the review shows each image beside its reference
        references = Path(args.references).expanduser()
        if not references.is_dir():
            raise UserError(f"--references {args.references}: no such folder")
    settings, resolver = tui_settings(args.image_protocol)
    from tuitrain.cli.common import workspace
    from tuitrain.tui.app import TuitrainApp
    from tuitrain.tui.review.source import ReviewSource

    source = ReviewSource.from_folder(folder, resolution=args.resolution or 512, batch_size=args.batch_size or 1,
                                      references=references)
    app = TuitrainApp(workspace(args), review=source, image_protocol=resolver.result(), settings=settings)
    app.run()
    return 0
