from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageFilter

from tuitrain.dataset.hashing import (
    dhash,
    exact_duplicates,
    hamming,
    hash_file,
    hash_files,
    near_duplicate_groups,
    near_duplicates,
)
from tuitrain.demo.dataset import make_demo_dataset

from .conftest import save, textured


def test_dhash_is_stable_under_resizing_recompression_and_blur() -> None:
    original = textured((640, 480), 3)
    variants = [
        original.resize((320, 240), Image.Resampling.BICUBIC),
        original.convert("L").convert("RGB"),
        original.filter(ImageFilter.GaussianBlur(2)),
    ]
    assert all(hamming(dhash(original), dhash(variant)) <= 8 for variant in variants)


def test_dhash_tells_different_pictures_apart() -> None:
    hashes = [dhash(textured((200, 200), seed)) for seed in range(12)]
    distances = [hamming(a, b) for i, a in enumerate(hashes) for b in hashes[i + 1 :]]
    assert min(distances) > 20


def test_near_duplicates_group_around_a_representative_not_in_chains() -> None:
    """a~e~b~c are each within 3 bits of the next, but c is 6 bits from a: single linkage made them one
    group; now a file joins only a representative within the threshold (issue 23)."""
    a, b, c, d, e = (Path(name) for name in "abcde")
    hashes = [(a, 0b0), (b, 0b111), (c, 0b111111), (d, (1 << 64) - 1), (e, 0b1)]
    assert near_duplicates(hashes, max_distance=3) == [[a, b, e]]  # c is 3 bits from b, but 6 from a
    assert near_duplicate_groups(hashes, max_distance=3) == [[(a, 0), (b, 3), (e, 1)]]


def test_the_demos_different_pictures_are_not_near_duplicates(tmp_path: Path) -> None:
    """Six clearly different demo shapes were one "look alike" group (issue 23); only the planted copy is alike."""
    planted = make_demo_dataset(tmp_path)
    paths = sorted(p for p in tmp_path.glob("*.png") if p != planted.unreadable)
    hashes = [(path, result.dhash or 0) for path, result in zip(paths, hash_files(paths, workers=1))]
    assert near_duplicates(hashes) == [sorted(planted.duplicate)]


def test_exact_duplicates_group_by_digest() -> None:
    paths = [Path(n) for n in ("x", "y", "z", "w")]
    assert exact_duplicates(zip(paths, ["1", "2", "1", "1"])) == [[Path("w"), Path("x"), Path("z")]]


def test_hash_file_reports_decode_failures_instead_of_raising(tmp_path: Path) -> None:
    good = save(tmp_path / "good.png", (64, 64))
    (tmp_path / "bad.png").write_bytes(good.read_bytes()[:100])

    results = hash_files([good, tmp_path / "bad.png", tmp_path / "missing.png"], workers=2)

    assert results[0].error is None and results[0].dhash == dhash(textured((64, 64)))
    assert results[1].sha256 is not None and results[1].error.startswith("cannot decode")
    assert results[2].sha256 is None and results[2].error.startswith("cannot read")
    assert hash_file(good) == results[0]
