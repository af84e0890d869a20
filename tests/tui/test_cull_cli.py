"""`tuitrain cull DIR` without the TUI: --list-trash, --undo, --empty-trash, through the real CLI."""

from __future__ import annotations

import time
from pathlib import Path

from tests.tui.conftest import make_dataset, tuitrain
from tuitrain.dataset import cull


def parent_with_two_concepts(tmp_path: Path) -> tuple[Path, Path, Path]:
    root = tmp_path / "data"
    first = make_dataset(root / "10_fox")
    second = make_dataset(root / "5_owl")
    return root, first, second


def test_list_undo_and_empty_on_a_kohya_parent(tmp_path: Path) -> None:
    root, fox, owl = parent_with_two_concepts(tmp_path)
    original = (fox / "a.bmp").read_bytes(), (fox / "a.txt").read_bytes()
    assert "Nothing in the trash" in tuitrain("cull", str(root), "--list-trash").stdout

    cull(fox / "a.bmp", dataset_dir=fox)
    time.sleep(0.01)
    cull(owl / "b.bmp", dataset_dir=owl)
    listing = tuitrain("cull", str(root), "--list-trash")
    assert listing.returncode == 0
    assert f"{fox}: 1 culled" in listing.stdout and f"{owl}: 1 culled" in listing.stdout
    assert "a.bmp  (+ a.txt)" in listing.stdout and "b.bmp  (+ b.txt)" in listing.stdout

    undone = tuitrain("cull", str(root), "--undo")  # the newest first: owl's b
    assert undone.returncode == 0 and str(owl / "b.bmp") in undone.stdout
    assert (owl / "b.bmp").exists() and not (fox / "a.bmp").exists()
    assert tuitrain("cull", str(root), "--undo").returncode == 0
    assert ((fox / "a.bmp").read_bytes(), (fox / "a.txt").read_bytes()) == original
    nothing = tuitrain("cull", str(root), "--undo")
    assert nothing.returncode == 1 and "Nothing to undo" in nothing.stderr


def test_empty_trash_asks_first(tmp_path: Path) -> None:
    folder = make_dataset(tmp_path / "set")
    cull(folder / "a.bmp")
    cull(folder / "e.bmp")
    trash = folder / ".tuitrain-trash"

    declined = tuitrain("cull", str(folder), "--empty-trash", stdin="n\n")
    assert declined.returncode == 1 and "[y/N]" in declined.stdout and "Nothing deleted" in declined.stdout
    assert "2 culled image(s) (3 files)" in declined.stdout
    assert tuitrain("cull", str(folder), "--empty-trash", stdin="").returncode == 1  # no answer is no
    assert len([p for p in trash.rglob("*") if p.is_file() and p.suffix != ".jsonl"]) == 3

    accepted = tuitrain("cull", str(folder), "--empty-trash", stdin="y\n")
    assert accepted.returncode == 0 and "Deleted 3 file(s)" in accepted.stdout
    assert not trash.exists()
    assert not (folder / "a.bmp").exists() and (folder / "b.bmp").exists()

    cull(folder / "b.bmp")
    quiet = tuitrain("cull", str(folder), "--empty-trash", "--yes", stdin="")
    assert quiet.returncode == 0 and "[y/N]" not in quiet.stdout and not trash.exists()
    assert "already empty" in tuitrain("cull", str(folder), "--empty-trash", "--yes").stdout


def test_cull_argument_mistakes(tmp_path: Path) -> None:
    folder = make_dataset(tmp_path / "set")
    missing = tuitrain("cull", str(tmp_path / "nope"), "--list-trash")
    assert missing.returncode == 2 and "no such folder" in missing.stderr
    both = tuitrain("cull", str(folder), "--undo", "--list-trash")
    assert both.returncode == 2 and "one of" in both.stderr
    assert tuitrain("cull", str(folder), "--yes").returncode == 2
    assert tuitrain("cull", str(folder), "--image-protocol", "iterm").returncode == 2
