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


def shared(root: Path) -> tuple[Path, Path, Path]:
    """Two concepts, day (a, b) and night (c, d), with their references in one folder, and refs/old.png that
    no image of either pairs with: what `cull --references` makes of a folder of several concepts."""
    day, night, refs = root / "day", root / "night", root / "refs"
    for folder, names in ((day, "ab"), (night, "cd"), (refs, "abcd")):
        folder.mkdir()
        for name in names:
            Image.new("RGB", (64, 64), "red").save(folder / f"{name}.png")
    Image.new("RGB", (64, 64), "blue").save(refs / "old.png")
    return day, night, refs


def said_once(text: str) -> bool:
    """Whether a report says one unpaired-references warning, the shared folder's old.png (wrapping undone)."""
    flat = " ".join(text.split())
    return flat.count("with no image of") == 1 and "day: 1 reference image in " in flat \
        and "of the concepts sharing it (day, night) (not used): old.png" in flat


def test_concepts_sharing_a_references_folder_say_its_unused_references_once(tmp_path: Path) -> None:
    """Each concept uses its own part of a shared folder: none calls the other's references unused, and the
    one reference no concept pairs with is said once, with its folder and the concepts that share it."""
    day, night, refs = shared(tmp_path)
    report = preflight([ConceptSpec(path=day, references=refs), ConceptSpec(path=night, references=refs)],
                       BucketSpec(resolution=64), full_check=False)
    expected = (f"1 reference image in {refs} pairs with no image of the concepts sharing it (day, night) "
                "(not used): old.png")
    assert [c.warnings for c in report.concepts] == [(expected,), ()]
    assert said_once(report.render())
    (refs / "old.png").unlink()
    report = preflight([ConceptSpec(path=day, references=refs), ConceptSpec(path=night, references=refs)],
                       BucketSpec(resolution=64), full_check=False)
    assert [c.warnings for c in report.concepts] == [(), ()] and report.can_train


def test_the_review_of_cull_references_says_a_shared_folder_once(tmp_path: Path) -> None:
    """`tuitrain cull DIR --references REFS` gives every concept under DIR the same folder."""
    from tuitrain.tui.review.source import ReviewSource

    (tmp_path / "set").mkdir()
    _, _, refs = shared(tmp_path / "set")  # set/refs is left out of the concepts
    source = ReviewSource.from_folder(tmp_path / "set", resolution=64, references=refs)
    assert [Path(spec.path).name for spec in source.concepts] == ["day", "night"]
    assert said_once(source.preflight(full_check=False).render())


def test_check_says_a_shared_folders_unused_references_once(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from tuitrain.cli.main import main

    day, night, refs = shared(tmp_path)
    for folder in (day, night):
        for image in folder.glob("*.png"):
            image.with_suffix(".txt").write_text(f"{folder.name} photo\n")
    config = tmp_path / "k.toml"
    config.write_text(f'[model]\nfamily = "flux"\nflavour = "kontext"\nbase = "{tmp_path / "no-model"}"\n'
                      f'[data]\nresolution = 64\n[[data.concepts]]\npath = "{day}"\nreferences = "{refs}"\n'
                      f'[[data.concepts]]\npath = "{night}"\nreferences = "{refs}"\n')
    try:
        main(["check", str(config)])
    except SystemExit:
        pass  # the base model is not there: check refuses, after its data report
    assert said_once(capsys.readouterr().out)
