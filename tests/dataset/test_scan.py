from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PIL import Image, ImageFile

from tuitrain.dataset import ConceptSpec, scan_concept
from tuitrain.dataset import scan as scan_module
from tuitrain.dataset.scancache import ScanCache, default_cache_dir
from tuitrain.dataset.spec import discover_concepts

from .conftest import save, textured


def names(scan) -> list[str]:  # type: ignore[no-untyped-def]
    return [image.rel for image in scan.images]


def test_finds_every_supported_format(tmp_path: Path, cache_dir: Path) -> None:
    for name in ["a.jpg", "b.jpeg", "c.png", "d.webp", "e.bmp", "f.tiff", "g.tif", "h.JPG"]:
        save(tmp_path / name, (40, 30))
    frames = [textured((40, 30), seed) for seed in range(3)]
    frames[0].save(tmp_path / "i.gif", save_all=True, append_images=frames[1:])

    scan = scan_concept(ConceptSpec(tmp_path), cache_dir=cache_dir)

    assert names(scan) == ["a.jpg", "b.jpeg", "c.png", "d.webp", "e.bmp", "f.tiff", "g.tif", "h.JPG", "i.gif"]
    assert all(image.size == (40, 30) for image in scan.images)
    assert [image.format for image in scan.images] == [
        "JPEG",
        "JPEG",
        "PNG",
        "WEBP",
        "BMP",
        "TIFF",
        "TIFF",
        "JPEG",
        "GIF",
    ]
    assert scan.problems == []


def test_skips_captions_masks_hidden_files_and_the_trash(tmp_path: Path, cache_dir: Path) -> None:
    save(tmp_path / "keep.png")
    save(tmp_path / "keep-masklabel.png")
    save(tmp_path / ".hidden.png")
    save(tmp_path / ".tuitrain-trash" / "files" / "x" / "gone.png")
    (tmp_path / "keep.txt").write_text("caption", encoding="utf-8")
    (tmp_path / "notes.md").write_text("not an image", encoding="utf-8")

    scan = scan_concept(ConceptSpec(tmp_path, recursive=True), cache_dir=cache_dir)

    assert names(scan) == ["keep.png"]
    assert scan.problems == []


def test_a_custom_mask_suffix_is_skipped_as_well(tmp_path: Path, cache_dir: Path) -> None:
    save(tmp_path / "keep.png")
    save(tmp_path / "keep_mask.png")

    default = scan_concept(ConceptSpec(tmp_path), cache_dir=cache_dir)
    custom = scan_concept(ConceptSpec(tmp_path, mask_suffix="_mask.png"), cache_dir=cache_dir)

    assert names(default) == ["keep.png", "keep_mask.png"]
    assert names(custom) == ["keep.png"]


def test_recursive_is_optional(tmp_path: Path, cache_dir: Path) -> None:
    save(tmp_path / "top.png")
    save(tmp_path / "sub" / "deeper" / "low.png")

    flat = scan_concept(ConceptSpec(tmp_path), cache_dir=cache_dir)
    deep = scan_concept(ConceptSpec(tmp_path, recursive=True), cache_dir=cache_dir)

    assert names(flat) == ["top.png"]
    assert names(deep) == ["sub/deeper/low.png", "top.png"]


def test_symlinked_folder_loop_does_not_hang(tmp_path: Path, cache_dir: Path) -> None:
    save(tmp_path / "a.png")
    os.symlink(tmp_path, tmp_path / "loop")

    scan = scan_concept(ConceptSpec(tmp_path, recursive=True), cache_dir=cache_dir)

    assert names(scan) == ["a.png"]


@pytest.mark.parametrize("orientation, expected", [(1, (60, 40)), (3, (60, 40)), (6, (40, 60)), (8, (40, 60))])
def test_exif_orientation_is_applied_to_the_size(
    tmp_path: Path, cache_dir: Path, orientation: int, expected: tuple[int, int]
) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    save(tmp_path / "photo.jpg", (60, 40), exif=exif)

    (image,) = scan_concept(ConceptSpec(tmp_path), cache_dir=cache_dir).images

    assert image.size == expected
    assert image.orientation == orientation


def test_scan_reads_headers_only(tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    for index, name in enumerate(["a.jpg", "b.png", "c.webp", "e.tiff"]):
        save(tmp_path / name, (300, 200), seed=index, exif=exif)  # stored landscape, shown portrait
    save(tmp_path / "d.bmp", (300, 200))  # BMP and GIF carry no EXIF
    save(tmp_path / "f.gif", (300, 200))
    decoded: list[str] = []
    real_load = ImageFile.ImageFile.load

    def spy(self):  # type: ignore[no-untyped-def]
        decoded.append(self.format)
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    scan = scan_concept(ConceptSpec(tmp_path), cache_dir=cache_dir)

    assert decoded == []
    assert [image.orientation for image in scan.images] == [6, 6, 6, 1, 6, 1]
    assert [image.size for image in scan.images] == [(200, 300)] * 3 + [(300, 200), (200, 300), (300, 200)]


def test_unicode_and_spaces_in_names(tmp_path: Path, cache_dir: Path) -> None:
    folder = tmp_path / "10_fée des bois"
    save(folder / "photo d’été 1.png")
    save(folder / "猫 cat.jpg")
    (folder / "猫 cat.txt").write_text("un chat, 猫", encoding="utf-8")

    scan = scan_concept(ConceptSpec(folder), cache_dir=cache_dir)

    assert scan.name == "fée des bois" and scan.repeats == 10
    assert names(scan) == ["photo d’été 1.png", "猫 cat.jpg"]
    assert scan.images[1].caption == "un chat, 猫"
    assert scan.missing_captions == [folder / "photo d’été 1.png"]


def test_undecodable_byte_names_are_scanned(tmp_path: Path, cache_dir: Path) -> None:
    raw = os.fsencode(tmp_path) + b"/caf\xe9.png"  # Latin-1 name on a UTF-8 system
    textured((20, 20)).save(raw.decode("utf-8", "surrogateescape"), format="PNG")

    scan = scan_concept(ConceptSpec(tmp_path), cache_dir=cache_dir)
    again = scan_concept(ConceptSpec(tmp_path), cache_dir=cache_dir)  # through the JSON cache

    assert [os.fsencode(image.path) for image in scan.images] == [raw]
    assert [os.fsencode(image.path) for image in again.images] == [raw]


def test_missing_folder_is_a_concept_error(tmp_path: Path, cache_dir: Path) -> None:
    scan = scan_concept(ConceptSpec(tmp_path / "nope"), cache_dir=cache_dir)

    assert scan.images == []
    assert scan.errors and "not found" in scan.errors[0]


# --- scan cache ---------------------------------------------------------------


def _fail_on_header_read(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    reads: list[Path] = []
    real = scan_module.read_header

    def counting(source):  # type: ignore[no-untyped-def]
        reads.append(Path(source.name))
        return real(source)

    monkeypatch.setattr(scan_module, "read_header", counting)
    return reads


def test_second_scan_of_unchanged_folder_reads_no_header(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for index in range(5):
        save(tmp_path / f"{index}.png", (50 + index, 40), seed=index)
    first = scan_concept(ConceptSpec(tmp_path), cache_dir=cache_dir)
    reads = _fail_on_header_read(monkeypatch)

    second = scan_concept(ConceptSpec(tmp_path), cache_dir=cache_dir)

    assert reads == []
    assert second.images == first.images


def test_cache_is_invalidated_by_mtime_change(tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save(tmp_path / "a.png", (50, 40))
    scan_concept(ConceptSpec(tmp_path), cache_dir=cache_dir)
    info = path.stat()
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))  # touched, same size
    reads = _fail_on_header_read(monkeypatch)

    (image,) = scan_concept(ConceptSpec(tmp_path), cache_dir=cache_dir).images
    again = _fail_on_header_read(monkeypatch)
    scan_concept(ConceptSpec(tmp_path), cache_dir=cache_dir)

    assert reads == [path]
    assert again == []  # the new mtime was cached
    assert image.size == (50, 40)


def test_cache_is_invalidated_by_size_change_with_same_mtime(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = save(tmp_path / "a.png", (50, 40))
    scan_concept(ConceptSpec(tmp_path), cache_dir=cache_dir)
    mtime_ns = path.stat().st_mtime_ns
    save(path, (120, 80), seed=3)
    os.utime(path, ns=(mtime_ns, mtime_ns))  # same mtime, different size
    reads = _fail_on_header_read(monkeypatch)

    (image,) = scan_concept(ConceptSpec(tmp_path), cache_dir=cache_dir).images

    assert reads == [path]
    assert image.size == (120, 80)


def test_cache_forgets_deleted_files_and_sees_new_ones(tmp_path: Path, cache_dir: Path) -> None:
    save(tmp_path / "a.png")
    save(tmp_path / "b.png")
    scan_concept(ConceptSpec(tmp_path), cache_dir=cache_dir)
    (tmp_path / "a.png").unlink()
    save(tmp_path / "c.png")

    scan = scan_concept(ConceptSpec(tmp_path), cache_dir=cache_dir)

    assert names(scan) == ["b.png", "c.png"]
    cache = ScanCache.for_folder(tmp_path, recursive=False, cache_dir=cache_dir)
    assert sorted(cache._entries) == ["b.png", "c.png"]


def test_captions_are_always_read_fresh(tmp_path: Path, cache_dir: Path) -> None:
    save(tmp_path / "a.png")
    caption = tmp_path / "a.txt"
    caption.write_text("old", encoding="utf-8")
    scan_concept(ConceptSpec(tmp_path), cache_dir=cache_dir)
    caption.write_text("new", encoding="utf-8")

    assert scan_concept(ConceptSpec(tmp_path), cache_dir=cache_dir).images[0].caption == "new"


def test_corrupt_cache_file_is_ignored(tmp_path: Path, cache_dir: Path) -> None:
    save(tmp_path / "a.png", (30, 20))
    scan_concept(ConceptSpec(tmp_path), cache_dir=cache_dir)
    for file in cache_dir.iterdir():
        file.write_text("{not json", encoding="utf-8")

    scan = scan_concept(ConceptSpec(tmp_path), cache_dir=cache_dir)

    assert [image.size for image in scan.images] == [(30, 20)]


def test_default_cache_dir_is_the_user_cache_not_the_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    data = tmp_path / "data"
    save(data / "a.png")

    scan_concept(ConceptSpec(data))

    assert default_cache_dir() == tmp_path / "xdg" / "tuitrain" / "scan"
    assert len(list(default_cache_dir().glob("*.json"))) == 1
    assert sorted(p.name for p in data.iterdir()) == ["a.png"]


def test_unwritable_cache_dir_does_not_break_the_scan(tmp_path: Path) -> None:
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("x", encoding="utf-8")
    save(tmp_path / "data" / "a.png")

    scan = scan_concept(ConceptSpec(tmp_path / "data"), cache_dir=blocker / "cache")

    assert len(scan.images) == 1


def test_cache_record_of_the_wrong_shape_is_ignored(tmp_path: Path, cache_dir: Path) -> None:
    save(tmp_path / "a.png", (30, 20))
    scan_concept(ConceptSpec(tmp_path), cache_dir=cache_dir)
    (cache_file,) = cache_dir.iterdir()
    data = json.loads(cache_file.read_text(encoding="utf-8"))
    data["entries"]["a.png"]["header"] = {"bogus": 1}
    cache_file.write_text(json.dumps(data), encoding="utf-8")

    assert [image.size for image in scan_concept(ConceptSpec(tmp_path), cache_dir=cache_dir).images] == [(30, 20)]


# --- concepts from a --data folder -------------------------------------------------


def test_discover_concepts_kohya_layout(tmp_path: Path) -> None:
    save(tmp_path / "10_faery" / "a.png")
    save(tmp_path / "3_castle" / "b.png")
    (tmp_path / ".cache").mkdir()

    concepts = discover_concepts(tmp_path)

    assert [(c.display_name, c.effective_repeats) for c in concepts] == [
        ("faery", 10),
        ("castle", 3),
    ]  # folder-name order


def test_discover_concepts_flat_folder(tmp_path: Path) -> None:
    save(tmp_path / "a.png")
    save(tmp_path / "sub" / "b.png")

    assert [c.path for c in discover_concepts(tmp_path)] == [tmp_path, tmp_path / "sub"]
    assert [c.path for c in discover_concepts(tmp_path, recursive=True)] == [tmp_path]
