"""Culling that never loses anything: a trash folder inside the dataset and a journal.

Culling moves an image with its caption and mask into `.tuitrain-trash/` by
rename (never copy), so bytes, names and timestamps come back untouched on
undo, even after a restart. Only `empty_trash(confirm=True)` deletes.

Sidecars are found by stem, so `a.jpg` and `a.png` share `a.txt` (and the mask
`a-masklabel.png`). A sidecar goes with an image only when no image left in the
folder uses it; otherwise it stays, and the entry remembers it as "shared". When
the last of its images is culled, it goes with that one. Restoring an image whose
shared sidecar has since gone to the trash (out of order, with `restore`) takes
the sidecar back out of the entry that holds it, so an image in place always has
the caption it had.

Crash safety: before any file moves, the journal gets an fsynced "intent"
record naming every file and where it goes; after the moves, a "done" record.
So at any instant each file is in place or in the trash, and the journal knows
where to look. The next call finishes (rolls forward) whatever was cut short.
A crash between the link and unlink of one move leaves a file under both
names; recovery drops the extra name.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuitrain.dataset.captions import caption_path
from tuitrain.dataset.fsutil import fsync_dir, move_no_overwrite
from tuitrain.dataset.scan import IMAGE_EXTENSIONS, MASK_SUFFIX, TRASH_DIR_NAME, UNSUPPORTED_EXTENSIONS, is_mask_file

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one program at a time is then the user's job
    fcntl = None  # type: ignore[assignment]

JOURNAL_NAME = "journal.jsonl"
FILES_DIR = "files"


@dataclass(frozen=True)
class TrashedFile:
    original: str  # path relative to the dataset folder, '/'-separated
    in_trash: str  # path relative to the trash folder


@dataclass(frozen=True)
class TrashEntry:
    """One culled image with its sidecars. After undo, restored_to says where each file went back."""

    id: str
    time: float
    dataset_dir: Path
    files: tuple[TrashedFile, ...]
    restored_to: tuple[Path, ...] = ()
    shared: tuple[str, ...] = ()  # sidecars the image used but left in place: another image used them too

    @property
    def image(self) -> Path:
        """Where the image was (the first file of an entry is always the image)."""
        return self.dataset_dir / self.files[0].original

    @property
    def trash_paths(self) -> tuple[Path, ...]:
        return tuple(trash_dir(self.dataset_dir) / f.in_trash for f in self.files)


def trash_dir(dataset_dir: Path) -> Path:
    return Path(dataset_dir) / TRASH_DIR_NAME


def cull(image_path: Path, *, dataset_dir: Path | None = None, caption_extension: str = ".txt",
         mask_suffix: str = MASK_SUFFIX) -> TrashEntry:
    """Move an image, its caption and its mask into the dataset's trash, journalled.

    A caption or mask that another image in the folder still uses (a.jpg and
    a.png share a.txt) stays in place. dataset_dir defaults to the image's
    folder; pass the concept folder for recursive concepts so there is one
    trash per concept.
    """
    image_path = Path(image_path)
    dataset_dir = Path(dataset_dir) if dataset_dir is not None else image_path.parent
    if not os.path.lexists(image_path):
        raise FileNotFoundError(f"no such image: {image_path}")
    rel_image = _relative(image_path, dataset_dir)
    if rel_image.split("/")[0] == TRASH_DIR_NAME:
        raise ValueError(f"{image_path} is already in the trash")

    with _locked(dataset_dir):
        _recover(dataset_dir)
        sidecars = [p for p in _sidecars(image_path, caption_extension, mask_suffix)
                    if p != image_path and os.path.lexists(p)]
        shared = [p for p in sidecars if _used_by_another_image(p, image_path, caption_extension, mask_suffix)]
        originals = [rel_image] + [_relative(p, dataset_dir) for p in sidecars if p not in shared]
        entry_id = _new_entry_id(dataset_dir)
        entry_dir = trash_dir(dataset_dir) / FILES_DIR / entry_id
        entry_dir.mkdir(parents=True)
        fsync_dir(entry_dir.parent)
        files = [[rel, f"{FILES_DIR}/{entry_id}/{Path(rel).name}"] for rel in originals]
        _append(dataset_dir, {"op": "cull", "id": entry_id, "time": time.time(), "files": files,
                              "shared": [_relative(p, dataset_dir) for p in shared]})
        _apply_moves(dataset_dir, [(dataset_dir / rel, trash_dir(dataset_dir) / dest) for rel, dest in files])
        _append(dataset_dir, {"op": "done", "id": entry_id})
        return _state(dataset_dir).live[entry_id]


def undo(dataset_dir: Path) -> TrashEntry | None:
    """Restore the most recently culled entry still in the trash; None when the trash is empty."""
    dataset_dir = Path(dataset_dir)
    with _locked(dataset_dir):
        live = _recover(dataset_dir).live
        if not live:
            return None
        return _restore(dataset_dir, list(live.values())[-1])


def restore(dataset_dir: Path, entry_id: str) -> TrashEntry:
    """Restore one particular trash entry (for a trash browser); KeyError if it is not in the trash."""
    dataset_dir = Path(dataset_dir)
    with _locked(dataset_dir):
        return _restore(dataset_dir, _recover(dataset_dir).live[entry_id])


def list_trash(dataset_dir: Path) -> list[TrashEntry]:
    """Entries in the trash, oldest first (undo takes them from the end)."""
    dataset_dir = Path(dataset_dir)
    if not trash_dir(dataset_dir).exists():
        return []
    with _locked(dataset_dir):
        return list(_recover(dataset_dir).live.values())


def empty_trash(dataset_dir: Path, *, confirm: bool) -> int:
    """Delete everything in the trash for good; returns how many files were deleted.

    The asking happens in the UI; this refuses unless confirm is True.
    """
    if confirm is not True:
        raise PermissionError("empty_trash deletes files for good: call it with confirm=True after asking")
    dataset_dir = Path(dataset_dir)
    if not trash_dir(dataset_dir).exists():
        return 0
    with _locked(dataset_dir):
        live = _recover(dataset_dir).live
        if not live:
            return 0
        purge_id = _new_op_id()
        _append(dataset_dir, {"op": "purge", "id": purge_id, "entries": list(live)})
        deleted = _purge(dataset_dir, list(live.values()))
        _append(dataset_dir, {"op": "done", "id": purge_id})
        _remove_trash_if_empty(dataset_dir)
        return deleted


# --- journal ---------------------------------------------------------------


@dataclass
class _State:
    live: dict[str, TrashEntry]  # in cull order
    unfinished: list[dict[str, Any]]  # intent records without a done record


def _journal(dataset_dir: Path) -> Path:
    return trash_dir(dataset_dir) / JOURNAL_NAME


def _append(dataset_dir: Path, record: dict[str, Any]) -> None:
    """Append one record and fsync it; a torn last line from an earlier crash is fenced off."""
    path = _journal(dataset_dir)
    line = json.dumps(record, ensure_ascii=True) + "\n"
    with open(path, "ab+") as handle:
        handle.seek(0, os.SEEK_END)
        if handle.tell() > 0:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                line = "\n" + line
        handle.write(line.encode("ascii"))
        handle.flush()
        os.fsync(handle.fileno())
    fsync_dir(path.parent)


def _records(dataset_dir: Path) -> list[dict[str, Any]]:
    try:
        text = _journal(dataset_dir).read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        return []
    records = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line torn by a crash: its operation never got its done record
        if isinstance(record, dict):
            records.append(record)
    return records


def _state(dataset_dir: Path) -> _State:
    dataset_dir = Path(dataset_dir)
    intents: dict[str, dict[str, Any]] = {}
    live: dict[str, TrashEntry] = {}
    for record in _records(dataset_dir):
        op = record.get("op")
        if op in ("cull", "restore", "purge"):
            intents[record["id"]] = record
            if op == "purge":  # deleting cannot be undone, so a started purge counts at once
                for entry_id in record["entries"]:
                    live.pop(entry_id, None)
        elif op == "done":
            intent = intents.pop(record["id"], None)
            if intent is None:
                continue
            if intent["op"] == "cull":
                live[intent["id"]] = _entry_from_intent(dataset_dir, intent)
            elif intent["op"] == "restore":
                live.pop(intent["entry"], None)
                _drop_borrowed(live, {in_trash for in_trash, _ in intent["files"]})
    return _State(live=live, unfinished=list(intents.values()))


def _recover(dataset_dir: Path) -> _State:
    """Finish every operation a crash cut short, then return the settled state."""
    state = _state(dataset_dir)
    for intent in state.unfinished:
        if intent["op"] == "cull":
            moves = [(dataset_dir / a, trash_dir(dataset_dir) / b) for a, b in intent["files"]]
            _apply_moves(dataset_dir, moves)
        elif intent["op"] == "restore":
            moves = [(trash_dir(dataset_dir) / a, dataset_dir / b) for a, b in intent["files"]]
            _apply_moves(dataset_dir, moves, dodge_clashes=True)
        elif intent["op"] == "purge":
            _purge(dataset_dir, [_entry_from_intent(dataset_dir, i) for i in _cull_intents(dataset_dir, intent)])
        _append(dataset_dir, {"op": "done", "id": intent["id"]})
    if state.unfinished:
        state = _state(dataset_dir)
    if not state.live:
        _remove_trash_if_empty(dataset_dir)
    return state


def _cull_intents(dataset_dir: Path, purge: dict[str, Any]) -> list[dict[str, Any]]:
    wanted = set(purge["entries"])
    return [r for r in _records(dataset_dir) if r.get("op") == "cull" and r.get("id") in wanted]


def _entry_from_intent(dataset_dir: Path, intent: dict[str, Any]) -> TrashEntry:
    files = tuple(TrashedFile(a, b) for a, b in intent["files"])
    shared = tuple(str(rel) for rel in intent.get("shared", ()))  # journals before shared sidecars have none
    return TrashEntry(id=intent["id"], time=intent["time"], dataset_dir=dataset_dir, files=files, shared=shared)


def _drop_borrowed(live: dict[str, TrashEntry], moved_out: set[str]) -> None:
    """A restore took these trash files back (a shared sidecar): the entries that held them no longer do."""
    for entry_id, entry in live.items():
        kept = tuple(f for f in entry.files if f.in_trash not in moved_out)
        if len(kept) != len(entry.files):
            live[entry_id] = TrashEntry(entry.id, entry.time, entry.dataset_dir, kept, shared=entry.shared)


# --- moving files ----------------------------------------------------------


def _apply_moves(dataset_dir: Path, moves: list[tuple[Path, Path]], *, dodge_clashes: bool = False) -> None:
    """Move each src to dst; safe to repeat after a crash (done moves are recognised).

    dodge_clashes: when dst holds some other file (only possible if one appeared
    while a restore was cut short), restore under a free name instead.
    """
    touched: set[Path] = set()
    for src, dst in moves:
        src_there, dst_there = os.path.lexists(src), os.path.lexists(dst)
        if src_there and dst_there and _same_file(src, dst):
            os.unlink(src)  # crash between link and unlink: drop the old name
        elif src_there and dst_there and dodge_clashes:
            dst.parent.mkdir(parents=True, exist_ok=True)
            move_no_overwrite(src, _free_path(dst))
        elif src_there:
            dst.parent.mkdir(parents=True, exist_ok=True)
            move_no_overwrite(src, dst)
        touched.update((src.parent, dst.parent))
    for folder in touched:
        fsync_dir(folder)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samestat(os.lstat(a), os.lstat(b))
    except OSError:
        return False


def _restore(dataset_dir: Path, entry: TrashEntry) -> TrashEntry:
    """Move an entry's files back; when the image's name is taken, all its files get a free stem.

    A shared sidecar the image used that has since followed another image into
    the trash comes back too (taken out of that entry), so the image has its caption again.
    """
    stem = Path(entry.files[0].original).stem
    new_stem = _free_stem(dataset_dir, entry, stem)
    files = []
    for item in entry.files:
        original = Path(item.original)
        name = original.name
        if new_stem != stem and name.startswith(stem):
            name = new_stem + name[len(stem) :]
        files.append([item.in_trash, original.with_name(name).as_posix()])
    if new_stem == stem:
        files += _borrowed_sidecars(dataset_dir, entry)
    restore_id = _new_op_id()
    _append(dataset_dir, {"op": "restore", "id": restore_id, "entry": entry.id, "files": files})
    _apply_moves(dataset_dir, [(trash_dir(dataset_dir) / a, dataset_dir / b) for a, b in files], dodge_clashes=True)
    _append(dataset_dir, {"op": "done", "id": restore_id})
    _remove_entry_dir(dataset_dir, entry)
    restored = tuple(dataset_dir / b for _, b in files)
    if not _state(dataset_dir).live:
        _remove_trash_if_empty(dataset_dir)
    return TrashEntry(entry.id, entry.time, entry.dataset_dir, entry.files, restored_to=restored, shared=entry.shared)


def _borrowed_sidecars(dataset_dir: Path, entry: TrashEntry) -> list[list[str]]:
    """[in_trash, original] of each shared sidecar of `entry` now held by another entry, whose place is free."""
    wanted = {rel for rel in entry.shared if not os.path.lexists(dataset_dir / rel)}
    found: dict[str, str] = {}
    for other in _state(dataset_dir).live.values():
        for item in other.files[1:]:  # never another entry's image
            if other.id != entry.id and item.original in wanted:
                found[item.original] = item.in_trash  # the newest holder wins (there is only one in practice)
    return [[in_trash, original] for original, in_trash in found.items()]


def _free_stem(dataset_dir: Path, entry: TrashEntry, stem: str) -> str:
    """The image's own stem if all its files' names are free, else 'stem (restored)', 'stem (restored 2)', ..."""
    candidates = [stem, f"{stem} (restored)"] + [f"{stem} (restored {n})" for n in range(2, 10_000)]
    for candidate in candidates:
        names = [Path(f.original).with_name(candidate + Path(f.original).name[len(stem) :]) for f in entry.files]
        if not any(os.path.lexists(dataset_dir / name) for name in names):
            return candidate
    raise FileExistsError(f"no free name to restore {stem}")


def _free_path(path: Path) -> Path:
    for n in range(1, 10_000):
        candidate = path.with_name(f"{path.stem} (restored{'' if n == 1 else f' {n}'}){path.suffix}")
        if not os.path.lexists(candidate):
            return candidate
    raise FileExistsError(f"no free name to restore {path}")


def _purge(dataset_dir: Path, entries: list[TrashEntry]) -> int:
    deleted = 0
    for entry in entries:
        for path in entry.trash_paths:
            if os.path.lexists(path):
                os.unlink(path)
                deleted += 1
        _remove_entry_dir(dataset_dir, entry)
    return deleted


def _remove_entry_dir(dataset_dir: Path, entry: TrashEntry) -> None:
    with contextlib.suppress(OSError):  # not empty (a stranger's file) or already gone: leave it
        (trash_dir(dataset_dir) / FILES_DIR / entry.id).rmdir()


def _remove_trash_if_empty(dataset_dir: Path) -> None:
    """With nothing left in the trash, remove it and its journal, so an undone folder is as it was.

    Only empty folders are removed: if anything unknown sits in the trash, it all stays.
    """
    root = trash_dir(dataset_dir)
    if not root.is_dir():
        return
    files_dir = root / FILES_DIR
    for _folder, _subfolders, names in os.walk(files_dir):
        if names:
            return
    with contextlib.suppress(FileNotFoundError):
        for folder, _subfolders, _names in sorted(os.walk(files_dir), key=lambda item: -len(item[0])):
            os.rmdir(folder)
    if set(os.listdir(root)) - {JOURNAL_NAME}:
        return
    with contextlib.suppress(FileNotFoundError):
        os.unlink(root / JOURNAL_NAME)
    with contextlib.suppress(OSError):
        root.rmdir()
    fsync_dir(Path(dataset_dir))


# --- sidecars --------------------------------------------------------------


def _sidecars(image: Path, caption_extension: str, mask_suffix: str) -> list[Path]:
    """The files named after an image's stem: its caption and its mask."""
    return [caption_path(image, caption_extension), image.with_name(image.stem + mask_suffix)]


def _used_by_another_image(sidecar: Path, image: Path, caption_extension: str, mask_suffix: str) -> bool:
    """Whether an image other than `image`, still in its folder, names `sidecar` as its caption or mask.

    Images are what the scan counts as images (unsupported formats too: they are
    the user's pictures all the same). On a case-insensitive file system
    A.png's caption A.txt is a.txt: names equal but for case count when they
    are the same file.
    """
    try:
        with os.scandir(image.parent) as entries:
            names = [e.name for e in entries if not e.is_dir(follow_symlinks=False)]
    except OSError:
        return True  # cannot tell: keeping a caption in place loses nothing
    for name in names:
        suffix = os.path.splitext(name)[1].lower()
        if (name == image.name or name.startswith(".") or is_mask_file(name, mask_suffix)
                or suffix not in IMAGE_EXTENSIONS | UNSUPPORTED_EXTENSIONS):
            continue
        for candidate in _sidecars(image.with_name(name), caption_extension, mask_suffix):
            if candidate.name == sidecar.name:
                return True
            if candidate.name.casefold() == sidecar.name.casefold() and _same_file(candidate, sidecar):
                return True
    return False


# --- small helpers -----------------------------------------------------------


def _relative(path: Path, dataset_dir: Path) -> str:
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(dataset_dir))
    if rel.startswith("..") or os.path.isabs(rel):
        raise ValueError(f"{path} is not inside the dataset folder {dataset_dir}")
    return Path(rel).as_posix()


def _new_op_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(4)


def _new_entry_id(dataset_dir: Path) -> str:
    while True:
        entry_id = _new_op_id()
        if not (trash_dir(dataset_dir) / FILES_DIR / entry_id).exists():
            return entry_id


@contextlib.contextmanager
def _locked(dataset_dir: Path) -> Iterator[None]:
    """One trash operation at a time per dataset (the TUI and a CLI may both be open)."""
    if fcntl is None:
        yield
        return
    fd = os.open(dataset_dir, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
