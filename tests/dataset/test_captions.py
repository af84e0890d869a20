from __future__ import annotations

import os
import random
import stat
from collections import Counter
from pathlib import Path

import pytest

from tuitrain.dataset import (
    CaptionOptions,
    ConceptSpec,
    apply_caption_options,
    caption_from_filename,
    fsutil,
    read_caption,
    scan_concept,
    shuffle_tags,
    write_caption,
)

from .conftest import save

# --- caption sources ------------------------------------------------------------------


def test_per_image_captions_missing_and_empty(tmp_path: Path, cache_dir: Path) -> None:
    save(tmp_path / "a.png")
    save(tmp_path / "b.png")
    save(tmp_path / "c.png")
    (tmp_path / "a.txt").write_text("  a cat, sitting \n", encoding="utf-8")
    (tmp_path / "b.txt").write_text(" \n\n", encoding="utf-8")

    scan = scan_concept(ConceptSpec(tmp_path), cache_dir=cache_dir)

    assert [image.caption for image in scan.images] == ["a cat, sitting", "", None]
    assert scan.images[0].caption_path == tmp_path / "a.txt"
    assert scan.empty_captions == [tmp_path / "b.png"]
    assert scan.missing_captions == [tmp_path / "c.png"]


def test_caption_extension_is_configurable_and_stems_with_dots_work(tmp_path: Path, cache_dir: Path) -> None:
    save(tmp_path / "v1.2.final.png")
    (tmp_path / "v1.2.final.caption").write_text("dotted", encoding="utf-8")
    (tmp_path / "v1.2.final.txt").write_text("wrong one", encoding="utf-8")

    scan = scan_concept(ConceptSpec(tmp_path, caption_extension=".caption"), cache_dir=cache_dir)

    assert scan.images[0].caption == "dotted"


def test_caption_with_bom_and_bad_bytes_is_read(tmp_path: Path, cache_dir: Path) -> None:
    save(tmp_path / "a.png")
    (tmp_path / "a.txt").write_bytes(b"\xef\xbb\xbfcaf\xc3\xa9, \xff tag")

    (image,) = scan_concept(ConceptSpec(tmp_path), cache_dir=cache_dir).images

    assert image.caption == "café, \ufffd tag"


def test_prompt_file_is_drawn_from_per_sample(tmp_path: Path, cache_dir: Path) -> None:
    save(tmp_path / "a.png")
    (tmp_path / "prompts.txt").write_text("a red dress\n\n  a blue hat \r\nsks style\n", encoding="utf-8")

    scan = scan_concept(ConceptSpec(tmp_path, caption="prompt-file"), cache_dir=cache_dir)
    rng = random.Random(1)
    drawn = Counter(scan.caption_for(scan.images[0], rng) for _ in range(300))

    assert scan.prompts == ["a red dress", "a blue hat", "sks style"]
    assert set(drawn) == set(scan.prompts)
    assert min(drawn.values()) > 60
    assert scan.missing_captions == [] and scan.errors == []


def test_prompt_file_relative_path_and_missing_file(tmp_path: Path, cache_dir: Path) -> None:
    save(tmp_path / "a.png")
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "p.txt").write_text("one\n", encoding="utf-8")

    found = scan_concept(
        ConceptSpec(tmp_path, caption="prompt-file", prompt_file=Path("lists/p.txt")), cache_dir=cache_dir
    )
    missing = scan_concept(ConceptSpec(tmp_path, caption="prompt-file"), cache_dir=cache_dir)

    assert found.prompts == ["one"]
    assert missing.errors == [f"prompt file not found: {tmp_path / 'prompts.txt'}"]


def test_filename_captions(tmp_path: Path, cache_dir: Path) -> None:
    save(tmp_path / "0003_red_dress.png")
    save(tmp_path / "1234.png")

    scan = scan_concept(ConceptSpec(tmp_path, caption="filename"), cache_dir=cache_dir)

    assert [image.caption for image in scan.images] == ["red dress", ""]
    assert scan.empty_captions == [tmp_path / "1234.png"]


@pytest.mark.parametrize(
    "name, caption",
    [
        ("red_dress.png", "red dress"),
        ("001_red_dress.png", "red dress"),
        ("red_dress_001.png", "red dress"),
        ("red_dress-12.jpg", "red dress"),
        ("red dress (2).png", "red dress"),
        ("red_dress_01 (3).png", "red dress"),
        ("IMG_20240101.jpg", "IMG"),
        ("r2d2 robot.png", "r2d2 robot"),
        ("__spaced__out__.png", "spaced out"),
        ("42.png", ""),
    ],
)
def test_caption_from_filename(name: str, caption: str) -> None:
    assert caption_from_filename(Path(name)) == caption


def test_instance_prompt(tmp_path: Path, cache_dir: Path) -> None:
    save(tmp_path / "a.png")
    scan = scan_concept(
        ConceptSpec(tmp_path, caption="instance", instance_prompt=" photo of sks dog "), cache_dir=cache_dir
    )
    empty = scan_concept(ConceptSpec(tmp_path, caption="instance"), cache_dir=cache_dir)

    assert scan.caption_for(scan.images[0], random.Random(0)) == "photo of sks dog"
    assert empty.warnings and "instance_prompt is empty" in empty.warnings[0]


@pytest.mark.parametrize(
    "folder, repeats, expected_repeats, expected_name",
    [
        ("10_faery", None, 10, "faery"),
        ("10_faery", 3, 3, "faery"),
        ("faery", None, 1, "faery"),
        ("1_two_words", None, 1, "two_words"),
        ("2024 trip", None, 1, "2024 trip"),
    ],
)
def test_repeats_and_name_from_folder(
    tmp_path: Path, folder: str, repeats: int | None, expected_repeats: int, expected_name: str
) -> None:
    spec = ConceptSpec(tmp_path / folder, repeats=repeats)
    assert (spec.effective_repeats, spec.display_name) == (expected_repeats, expected_name)
    assert ConceptSpec(tmp_path / folder, name="Mine").display_name == "Mine"


# --- tag shuffle and dropout ----------------------------------------------------------------


def test_shuffle_keeps_the_first_tags_and_all_tags() -> None:
    caption = "sks, 1girl, red dress, smiling, outdoors, night, rain"
    rng = random.Random(3)
    results = {shuffle_tags(caption, 2, rng) for _ in range(50)}

    assert len(results) > 10
    for result in results:
        tags = result.split(", ")
        assert tags[:2] == ["sks", "1girl"]
        assert sorted(tags) == sorted(caption.split(", "))


def test_caption_dropout_and_options() -> None:
    rng = random.Random(0)
    always = CaptionOptions(dropout=1.0)
    never = CaptionOptions(dropout=0.0, shuffle_tags=True, keep_tags=1)
    half = CaptionOptions(dropout=0.5)

    assert apply_caption_options("a, b", always, rng) == ""
    assert all(apply_caption_options("a, b, c", never, rng).startswith("a, ") for _ in range(20))
    dropped = sum(apply_caption_options("a", half, rng) == "" for _ in range(2000))
    assert 850 < dropped < 1150
    assert apply_caption_options("x, y", CaptionOptions(), rng) == "x, y"


# --- atomic caption edits ---------------------------------------------------------------------


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_write_caption_keeps_newline_style_and_trailing_newline(tmp_path: Path, newline: str) -> None:
    image = save(tmp_path / "a.png")
    (tmp_path / "a.txt").write_bytes(f"old line{newline}second{newline}".encode())

    assert read_caption(image) == "old line\nsecond\n"
    write_caption(image, "new, tags\nline two")

    assert (tmp_path / "a.txt").read_bytes() == f"new, tags{newline}line two{newline}".encode()


def test_write_caption_without_trailing_newline_stays_without(tmp_path: Path) -> None:
    image = save(tmp_path / "a.png")
    (tmp_path / "a.txt").write_bytes(b"one\r\ntwo")

    write_caption(image, "three\nfour")

    assert (tmp_path / "a.txt").read_bytes() == b"three\r\nfour"


def test_write_caption_new_file_is_utf8_lf_with_image_permissions(tmp_path: Path) -> None:
    image = save(tmp_path / "猫 cat.png")
    os.chmod(image, 0o640)

    path = write_caption(image, "un chat, 猫\nligne")

    assert path == tmp_path / "猫 cat.txt"
    assert path.read_bytes() == "un chat, 猫\nligne".encode()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert read_caption(image) == "un chat, 猫\nligne"


def test_write_caption_keeps_bom_and_permissions(tmp_path: Path) -> None:
    image = save(tmp_path / "a.png")
    caption = tmp_path / "a.txt"
    caption.write_bytes(b"\xef\xbb\xbfold\n")
    os.chmod(caption, 0o600)

    write_caption(image, "neu, ünïcode")

    assert caption.read_bytes() == "\ufeffneu, ünïcode\n".encode()
    assert stat.S_IMODE(caption.stat().st_mode) == 0o600


def test_write_caption_is_atomic_when_the_write_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    image = save(tmp_path / "a.png")
    caption = tmp_path / "a.txt"
    caption.write_bytes(b"precious\n")

    def crash(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fsutil.os, "fsync", crash)
    with pytest.raises(OSError):
        write_caption(image, "half written")

    assert caption.read_bytes() == b"precious\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "a.txt"]  # no temp file left


def test_write_caption_replaces_by_rename(tmp_path: Path) -> None:
    image = save(tmp_path / "a.png")
    caption = tmp_path / "a.txt"
    caption.write_text("old", encoding="utf-8")
    old_inode = caption.stat().st_ino
    with open(caption, encoding="utf-8") as reader_holding_old_file:
        write_caption(image, "new")
        assert reader_holding_old_file.read() == "old"  # a reader never sees a half-written file

    assert caption.stat().st_ino != old_inode
    assert caption.read_text(encoding="utf-8") == "new"


def test_write_caption_through_symlink_edits_the_target(tmp_path: Path) -> None:
    image = save(tmp_path / "a.png")
    (tmp_path / "shared.txt").write_text("old\n", encoding="utf-8")
    os.symlink("shared.txt", tmp_path / "a.txt")

    write_caption(image, "new")

    assert (tmp_path / "a.txt").is_symlink()
    assert (tmp_path / "shared.txt").read_text(encoding="utf-8") == "new\n"
