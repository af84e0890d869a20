"""The pre-flight of an editing model's pairs (dataset.references, issue 16): what `tuitrain check` and the
review's `r` say about references, beyond the images the pairing rule leaves out.

The rule itself (no reference or another shape: the image is not used) is tested through `check` in
tests/trainer/test_flux_kontext.py; here: a reference of another size (the trainer resizes it: a note),
references no image pairs with, and a references folder that is not there (concept warnings).
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from tuitrain.dataset import BucketSpec, ConceptSpec, preflight
from tuitrain.dataset.references import find_reference, reference_warnings, size_note, unpaired_references
from tuitrain.dataset.scan import scan_concept


def pairs(root: Path) -> tuple[Path, Path]:
    """data/a.png 64x64 with refs/a.png 64x64; b.png 64x64 with a 32x32 reference; c.png 64x32 with a
    128x64 one; d.png without one; refs/old.jpg and refs/zz.webp pair with no image (notes.txt is no image)."""
    data, refs = root / "data", root / "refs"
    data.mkdir()
    refs.mkdir()
    for name, size in (("a", (64, 64)), ("b", (64, 64)), ("c", (64, 32)), ("d", (64, 64))):
        Image.new("RGB", size, "red").save(data / f"{name}.png")
        (data / f"{name}.txt").write_text(f"caption {name}\n")
    for name, size in (("a.png", (64, 64)), ("b.png", (32, 32)), ("c.png", (128, 64)), ("old.jpg", (8, 8)),
                       ("zz.webp", (8, 8))):
        Image.new("RGB", size, "blue").save(refs / name)
    (refs / "notes.txt").write_text("not an image\n")
    return data, refs


def test_a_reference_of_another_size_is_noted_with_how_it_is_resized(tmp_path: Path) -> None:
    data, refs = pairs(tmp_path)
    report = preflight([ConceptSpec(path=data, references=refs)], BucketSpec(resolution=64), full_check=False)
    notes = {path.name: note for path, note in report.notes}
    assert notes["b.png"] == "reference b.png is 32x32: upscaled x2.00 to its image's 64x64"
    assert notes["c.png"] == "reference c.png is 128x64: downscaled x0.50 to its image's 64x32"
    assert "a.png" not in notes  # same size: nothing to say
    assert [problem.path.name for problem in report.unreadable] == ["d.png"]  # d: not used, as before
    assert "Handled automatically (2)" in report.render()


def test_references_no_image_pairs_with_are_a_concept_warning(tmp_path: Path) -> None:
    data, refs = pairs(tmp_path)
    report = preflight([ConceptSpec(path=data, references=refs)], BucketSpec(resolution=64), full_check=False)
    (concept,) = report.concepts
    assert concept.warnings == (f"2 reference images in {refs} pair with no image of this concept (not used): "
                                "old.jpg, zz.webp",)
    assert "old.jpg, zz.webp" in " ".join(report.render().split())
    assert report.can_train  # only a warning: the pairs that are whole train


def test_the_reference_of_an_unusable_image_is_not_called_unpaired(tmp_path: Path) -> None:
    """broken.png does not decode (the scan refuses it), but its reference pairs with it by name."""
    data, refs = pairs(tmp_path)
    (data / "broken.png").write_bytes(b"not a png")
    Image.new("RGB", (8, 8)).save(refs / "broken.png")
    scan = scan_concept(ConceptSpec(path=data, references=refs))
    assert [p.path.name for p in scan.problems] == ["broken.png"]
    report = preflight([ConceptSpec(path=data, references=refs)], BucketSpec(resolution=64), full_check=False)
    assert "broken.png" not in " ".join(report.concepts[0].warnings)


def test_a_references_folder_that_is_not_there_is_said_once(tmp_path: Path) -> None:
    data, _ = pairs(tmp_path)
    gone = tmp_path / "nowhere"
    report = preflight([ConceptSpec(path=data, references=gone)], BucketSpec(resolution=64), full_check=False)
    assert report.concepts[0].warnings == (
        f"references folder {gone} does not exist: no image of this concept has its reference",)
    assert len(report.unreadable) == 4  # and every image is left out, each named
    assert not report.can_train


def test_helpers_without_a_folder_or_with_equal_sizes(tmp_path: Path) -> None:
    data, refs = pairs(tmp_path)
    assert reference_warnings(None, []) == []
    assert [p.name for p in unpaired_references(refs, sorted(data.glob("*.png")))] == ["old.jpg", "zz.webp"]
    (image_a,) = [i for i in scan_concept(ConceptSpec(path=data)).images if i.path.name == "a.png"]
    found = find_reference(image_a, refs)
    assert found is not None and found.size == (64, 64) and found.problem == ""
    assert size_note(image_a, found) == ""
