"""Culling: nothing is ever lost, undo restores exactly, crashes leave everything findable."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tuitrain.dataset import ConceptSpec, cull, empty_trash, list_trash, restore, scan_concept, undo
from tuitrain.dataset import trash as trash_module
from tuitrain.dataset.trash import JOURNAL_NAME, trash_dir

from .conftest import dir_listing, save, tree_snapshot

REPO = Path(__file__).resolve().parents[2]


class SimulatedCrash(BaseException):
    """Raised where the process would have died; BaseException so no library code swallows it."""


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """Three captioned images, one with a mask, plus an unrelated file."""
    folder = tmp_path / "10_faery"
    for index, name in enumerate(["a", "b", "c"]):
        save(folder / f"{name}.png", (40 + index, 30), seed=index)
        (folder / f"{name}.txt").write_text(f"caption {name}\n", encoding="utf-8")
    save(folder / "a-masklabel.png", (40, 30), seed=9)
    (folder / "notes.md").write_text("keep me", encoding="utf-8")
    return folder


def test_cull_moves_image_caption_and_mask_into_the_trash(dataset: Path, cache_dir: Path) -> None:
    before = tree_snapshot(dataset)

    entry = cull(dataset / "a.png")

    assert sorted(p.name for p in dataset.iterdir()) == [
        ".tuitrain-trash",
        "b.png",
        "b.txt",
        "c.png",
        "c.txt",
        "notes.md",
    ]
    assert [f.original for f in entry.files] == ["a.png", "a.txt", "a-masklabel.png"]
    assert [p.read_bytes() for p in entry.trash_paths] == [before[f.original][0] for f in entry.files]
    assert entry.image == dataset / "a.png"
    assert [i.rel for i in scan_concept(ConceptSpec(dataset), cache_dir=cache_dir).images] == ["b.png", "c.png"]


def test_cull_takes_a_mask_with_the_concepts_own_suffix(dataset: Path) -> None:
    save(dataset / "b_mask.png", (41, 30), seed=8)

    entry = cull(dataset / "b.png", mask_suffix="_mask.png")

    assert [f.original for f in entry.files] == ["b.png", "b.txt", "b_mask.png"]
    assert not (dataset / "b_mask.png").exists()


def test_undo_restores_byte_identical_and_removes_the_trash(dataset: Path) -> None:
    before = tree_snapshot(dataset)
    listing = dir_listing(dataset)

    cull(dataset / "a.png")
    restored = undo(dataset)

    assert restored is not None
    assert restored.restored_to == (dataset / "a.png", dataset / "a.txt", dataset / "a-masklabel.png")
    assert tree_snapshot(dataset) == before  # bytes and mtimes
    assert dir_listing(dataset) == listing  # no trash folder left behind
    assert undo(dataset) is None


def test_several_undos_walk_back(dataset: Path) -> None:
    before = tree_snapshot(dataset)
    cull(dataset / "b.png")
    cull(dataset / "a.png")
    cull(dataset / "c.png")
    assert [e.image.name for e in list_trash(dataset)] == ["b.png", "a.png", "c.png"]

    assert undo(dataset).image.name == "c.png"  # type: ignore[union-attr]
    assert [e.image.name for e in list_trash(dataset)] == ["b.png", "a.png"]
    assert undo(dataset).image.name == "a.png"  # type: ignore[union-attr]
    assert undo(dataset).image.name == "b.png"  # type: ignore[union-attr]
    assert undo(dataset) is None
    assert tree_snapshot(dataset) == before


def test_undo_after_a_restart(dataset: Path) -> None:
    before = tree_snapshot(dataset)
    cull(dataset / "a.png")
    cull(dataset / "c.png")
    script = "import sys; from tuitrain.dataset import undo; print(undo(sys.argv[1]).image.name)"
    env = dict(os.environ, PYTHONPATH=str(REPO))

    outputs = [
        subprocess.run(
            [sys.executable, "-c", script, str(dataset)], env=env, capture_output=True, text=True, check=True
        ).stdout
        for _ in range(2)
    ]

    assert outputs == ["c.png\n", "a.png\n"]
    assert tree_snapshot(dataset) == before


def test_restore_a_particular_entry(dataset: Path) -> None:
    first = cull(dataset / "a.png")
    cull(dataset / "b.png")

    restore(dataset, first.id)

    assert (dataset / "a.png").exists() and not (dataset / "b.png").exists()
    assert [e.image.name for e in list_trash(dataset)] == ["b.png"]
    with pytest.raises(KeyError):
        restore(dataset, first.id)


def test_name_clash_on_restore_never_overwrites(dataset: Path) -> None:
    before = tree_snapshot(dataset)
    cull(dataset / "a.png")
    save(dataset / "a.png", (10, 10), seed=42)  # a new file took the name meanwhile
    newcomer = (dataset / "a.png").read_bytes()

    restored = undo(dataset)

    assert restored is not None
    assert [p.name for p in restored.restored_to] == [
        "a (restored).png",
        "a (restored).txt",
        "a (restored)-masklabel.png",
    ]
    assert (dataset / "a.png").read_bytes() == newcomer
    assert (dataset / "a (restored).png").read_bytes() == before["a.png"][0]
    assert (dataset / "a (restored).txt").read_bytes() == before["a.txt"][0]
    assert (dataset / "a (restored)-masklabel.png").read_bytes() == before["a-masklabel.png"][0]


def test_clash_of_a_sidecar_alone_also_renames_the_whole_entry(dataset: Path) -> None:
    cull(dataset / "b.png")
    (dataset / "b.txt").write_text("someone else's caption", encoding="utf-8")
    cull(dataset / "c.png")
    save(dataset / "c.png", seed=4)
    save(dataset / "c (restored).png", seed=5)

    assert [p.name for p in undo(dataset).restored_to] == ["c (restored 2).png", "c (restored 2).txt"]  # type: ignore[union-attr]
    assert [p.name for p in undo(dataset).restored_to] == ["b (restored).png", "b (restored).txt"]  # type: ignore[union-attr]
    assert (dataset / "b.txt").read_text(encoding="utf-8") == "someone else's caption"


def test_empty_trash_asks_first_then_deletes_for_good(dataset: Path) -> None:
    cull(dataset / "a.png")
    cull(dataset / "b.png")

    with pytest.raises(PermissionError):
        empty_trash(dataset, confirm=False)
    assert len(list_trash(dataset)) == 2

    assert empty_trash(dataset, confirm=True) == 5  # a.png, a.txt, a-masklabel.png, b.png, b.txt
    assert not trash_dir(dataset).exists()
    assert undo(dataset) is None
    assert sorted(p.name for p in dataset.iterdir()) == ["c.png", "c.txt", "notes.md"]


def test_culling_in_a_subfolder_of_a_recursive_concept(dataset: Path) -> None:
    save(dataset / "sub" / "deep.png")
    before = tree_snapshot(dataset)

    entry = cull(dataset / "sub" / "deep.png", dataset_dir=dataset)
    (dataset / "sub").rmdir()  # the folder went away meanwhile
    undo(dataset)

    assert entry.files[0].original == "sub/deep.png"
    assert tree_snapshot(dataset) == before


def test_cull_refuses_files_outside_the_dataset_and_missing_files(dataset: Path, tmp_path: Path) -> None:
    outside = save(tmp_path / "elsewhere.png")
    with pytest.raises(ValueError):
        cull(outside, dataset_dir=dataset)
    with pytest.raises(FileNotFoundError):
        cull(dataset / "nope.png")
    entry = cull(dataset / "a.png")
    with pytest.raises(ValueError):
        cull(entry.trash_paths[0], dataset_dir=dataset)
    assert outside.exists() and entry.trash_paths[0].exists()


def test_unicode_names_round_trip(tmp_path: Path) -> None:
    folder = tmp_path / "fée"
    save(folder / "été 猫 (1).png")
    (folder / "été 猫 (1).txt").write_text("chat", encoding="utf-8")
    before = tree_snapshot(folder)

    cull(folder / "été 猫 (1).png")
    assert trash_dir(folder).joinpath(JOURNAL_NAME).read_bytes().isascii()
    undo(folder)

    assert tree_snapshot(folder) == before


def test_custom_caption_extension_moves_that_caption(dataset: Path) -> None:
    (dataset / "c.caption").write_text("other", encoding="utf-8")
    entry = cull(dataset / "c.png", caption_extension=".caption")
    assert [f.original for f in entry.files] == ["c.png", "c.caption"]
    assert (dataset / "c.txt").exists()


# --- crash safety ---------------------------------------------------------------------------


def journal_records(dataset: Path) -> list[dict[str, object]]:
    path = trash_dir(dataset) / JOURNAL_NAME
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="ascii").splitlines():
        with contextlib.suppress(ValueError):  # a torn line
            records.append(json.loads(line))
    return records


def assert_nothing_lost(dataset: Path, before: dict[str, tuple[bytes, int]]) -> None:
    """Every original file is in place, or in the trash where the journal says it went."""
    recorded: dict[str, list[str]] = {}
    for record in journal_records(dataset):
        for source, destination in record.get("files", []):  # type: ignore[attr-defined]
            recorded.setdefault(source, []).append(destination)
    for rel, (data, _mtime) in before.items():
        in_place = dataset / rel
        if in_place.exists() and in_place.read_bytes() == data:
            continue
        places = [trash_dir(dataset) / dest for dest in recorded.get(rel, [])]
        assert any(p.exists() and p.read_bytes() == data for p in places), f"{rel} is lost"


def crash_on_call(monkeypatch: pytest.MonkeyPatch, name: str, when: int, *, half_done: bool = False) -> None:
    """Make the when-th call of trash_module.<name> die; half_done: after linking, before unlinking."""
    real = getattr(trash_module, name)
    calls = {"n": 0}

    def dying(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] - 1 == when:
            if half_done:
                os.link(args[0], args[1], follow_symlinks=False)
            raise SimulatedCrash(f"{name} #{when}")
        return real(*args, **kwargs)

    monkeypatch.setattr(trash_module, name, dying)


CULL_CRASHES = (
    [("move_no_overwrite", n, False) for n in range(3)]
    + [("move_no_overwrite", n, True) for n in range(3)]
    + [("_append", 0, False), ("_append", 1, False)]
)


@pytest.mark.parametrize("name, when, half_done", CULL_CRASHES)
def test_crash_during_cull(
    dataset: Path, monkeypatch: pytest.MonkeyPatch, name: str, when: int, half_done: bool
) -> None:
    before = tree_snapshot(dataset)
    cull(dataset / "b.png")
    with monkeypatch.context() as patch:
        crash_on_call(patch, name, when, half_done=half_done)
        with pytest.raises(SimulatedCrash):
            cull(dataset / "a.png")

    assert_nothing_lost(dataset, before)
    trashed = [e.image.name for e in list_trash(dataset)]  # the "restarted" program recovers first
    assert trashed[0] == "b.png" and trashed[1:] in ([], ["a.png"])
    assert_nothing_lost(dataset, before)
    while undo(dataset):
        pass
    assert tree_snapshot(dataset) == before
    assert not trash_dir(dataset).exists()


@pytest.mark.parametrize("name, when, half_done", CULL_CRASHES)
def test_crash_during_undo(
    dataset: Path, monkeypatch: pytest.MonkeyPatch, name: str, when: int, half_done: bool
) -> None:
    before = tree_snapshot(dataset)
    cull(dataset / "c.png")
    cull(dataset / "a.png")
    with monkeypatch.context() as patch:
        crash_on_call(patch, name, when, half_done=half_done)
        with pytest.raises(SimulatedCrash):
            undo(dataset)

    assert_nothing_lost(dataset, before)
    assert [e.image.name for e in list_trash(dataset)] in (["c.png"], ["c.png", "a.png"])
    assert_nothing_lost(dataset, before)
    while undo(dataset):
        pass
    assert tree_snapshot(dataset) == before


def test_crash_during_empty_trash_finishes_on_next_call(dataset: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cull(dataset / "a.png")
    cull(dataset / "b.png")
    real_unlink = os.unlink
    calls = {"n": 0}

    def dying_unlink(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:
            raise SimulatedCrash("unlink")
        return real_unlink(path, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(trash_module.os, "unlink", dying_unlink)
        with pytest.raises(SimulatedCrash):
            empty_trash(dataset, confirm=True)

    assert list_trash(dataset) == []  # the purge was decided: it is finished, not half-undone
    assert not trash_dir(dataset).exists()
    assert sorted(p.name for p in dataset.iterdir()) == ["c.png", "c.txt", "notes.md"]


def test_torn_journal_line_is_ignored_and_fenced(dataset: Path) -> None:
    before = tree_snapshot(dataset)
    cull(dataset / "a.png")
    with open(trash_dir(dataset) / JOURNAL_NAME, "ab") as journal:
        journal.write(b'{"op": "cull", "id": "x", "fi')  # the process died mid-write

    cull(dataset / "b.png")

    assert [e.image.name for e in list_trash(dataset)] == ["a.png", "b.png"]
    while undo(dataset):
        pass
    assert tree_snapshot(dataset) == before


# --- sidecars shared by images with one stem (a.jpg + a.png share a.txt) ----------------------


def two_images_one_caption(folder: Path, first: str, second: str) -> Path:
    """first and second share one stem, so one caption (a.txt) and one mask (a-masklabel.png)."""
    save(folder / first, (40, 30), seed=1)
    save(folder / second, (30, 40), seed=2)
    (folder / "a.txt").write_text("a fox, shared\n", encoding="utf-8")
    save(folder / "a-masklabel.png", (40, 30), seed=9)
    save(folder / "b.png", seed=3)
    (folder / "b.txt").write_text("b\n", encoding="utf-8")
    return folder


SAME_STEM = [("a.jpg", "a.png"), ("a.JPG", "a.jpg"), ("a.webp", "a.bmp")]


@pytest.mark.parametrize("first, second", SAME_STEM)
def test_a_caption_another_image_uses_stays_in_place(tmp_path: Path, first: str, second: str) -> None:
    folder = two_images_one_caption(tmp_path / "set", first, second)
    before = tree_snapshot(folder)

    entry = cull(folder / first)

    assert [f.original for f in entry.files] == [first]
    assert entry.shared == ("a.txt", "a-masklabel.png")
    assert (folder / "a.txt").read_bytes() == before["a.txt"][0] and (folder / "a-masklabel.png").exists()
    assert empty_trash(folder, confirm=True) == 1  # the image only: the live caption survives
    assert (folder / "a.txt").read_bytes() == before["a.txt"][0]
    assert (folder / "a-masklabel.png").read_bytes() == before["a-masklabel.png"][0]


@pytest.mark.parametrize("first, second", SAME_STEM)
def test_the_caption_goes_with_the_last_image_that_uses_it(tmp_path: Path, first: str, second: str) -> None:
    folder = two_images_one_caption(tmp_path / "set", first, second)
    before = tree_snapshot(folder)

    cull(folder / first)
    last = cull(folder / second)

    assert [f.original for f in last.files] == [second, "a.txt", "a-masklabel.png"]
    assert sorted(p.name for p in folder.iterdir()) == [".tuitrain-trash", "b.png", "b.txt"]
    assert undo(folder).restored_to == (folder / second, folder / "a.txt", folder / "a-masklabel.png")  # type: ignore[union-attr]
    assert undo(folder).restored_to == (folder / first,)  # type: ignore[union-attr]
    assert tree_snapshot(folder) == before
    assert not trash_dir(folder).exists()


def test_restoring_out_of_order_brings_the_shared_caption_back(tmp_path: Path) -> None:
    folder = two_images_one_caption(tmp_path / "set", "a.jpg", "a.png")
    before = tree_snapshot(folder)
    first = cull(folder / "a.jpg")
    assert first.shared == ("a.txt", "a-masklabel.png") and (folder / "a.txt").exists()  # a.png uses them
    cull(folder / "a.png")  # now they go, with a.png
    assert not (folder / "a.txt").exists()

    restored = restore(folder, first.id)  # a.jpg back first: it had a caption, it gets it back

    assert restored.restored_to == (folder / "a.jpg", folder / "a.txt", folder / "a-masklabel.png")
    assert (folder / "a.txt").read_bytes() == before["a.txt"][0]
    [left] = list_trash(folder)
    assert [f.original for f in left.files] == ["a.png"]  # no longer holds the caption
    assert undo(folder).restored_to == (folder / "a.png",)  # type: ignore[union-attr]
    assert tree_snapshot(folder) == before
    assert not trash_dir(folder).exists()


def test_culling_both_then_emptying_deletes_the_caption_once(tmp_path: Path) -> None:
    folder = two_images_one_caption(tmp_path / "set", "a.png", "a.jpg")
    cull(folder / "a.jpg")
    assert (folder / "a.txt").exists()
    cull(folder / "a.png")
    restore(folder, list_trash(folder)[0].id)  # a.jpg, with the caption taken from a.png's entry
    cull(folder / "a.jpg")  # alone again: the caption goes with it this time

    assert [[f.original for f in e.files] for e in list_trash(folder)] == [["a.png"], ["a.jpg", "a.txt", "a-masklabel.png"]]
    assert empty_trash(folder, confirm=True) == 4
    assert sorted(p.name for p in folder.iterdir()) == ["b.png", "b.txt"]


def test_a_different_stem_is_not_shared(tmp_path: Path) -> None:
    folder = tmp_path / "set"
    save(folder / "a.png")
    save(folder / "A.png", seed=1)  # on a case-sensitive file system A.png's caption is A.txt
    (folder / "a.txt").write_text("lower", encoding="utf-8")

    entry = cull(folder / "a.png")

    assert [f.original for f in entry.files] == ["a.png", "a.txt"] and entry.shared == ()


@pytest.mark.parametrize("name, when, half_done", CULL_CRASHES)
def test_crash_while_restoring_a_shared_caption(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, when: int, half_done: bool
) -> None:
    folder = two_images_one_caption(tmp_path / "set", "a.jpg", "a.png")
    before = tree_snapshot(folder)
    first = cull(folder / "a.jpg")
    assert first.shared == ("a.txt", "a-masklabel.png")
    cull(folder / "a.png")
    with monkeypatch.context() as patch:
        crash_on_call(patch, name, when, half_done=half_done)
        with pytest.raises(SimulatedCrash):
            restore(folder, first.id)

    assert_nothing_lost(folder, before)
    held = [f.original for e in list_trash(folder) for f in e.files]  # recovery finishes what was decided
    assert held in (["a.png"], ["a.jpg", "a.png", "a.txt", "a-masklabel.png"])
    while undo(folder):
        pass
    assert tree_snapshot(folder) == before
