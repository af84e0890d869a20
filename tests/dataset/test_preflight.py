from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from tuitrain.dataset import BucketSpec, ConceptSpec, cull, discover_concepts, preflight, undo
from tuitrain.dataset import usable as usable_module

from .conftest import make_unreadable, png_with_declared_size, save, textured, tree_snapshot

SPEC = BucketSpec(resolution=256)  # small buckets keep the test images small


def concept(folder: Path, squares: int = 0, wides: int = 0, talls: int = 0, seed: int = 0) -> Path:
    """Captioned images: squares go to 256x256, wides to 320x192 (5:3), talls to 192x320."""
    index = 0
    for count, size in ((squares, (300, 300)), (wides, (500, 300)), (talls, (300, 500))):
        for _ in range(count):
            save(folder / f"img{index:02d}.png", size, seed=seed * 100 + index)
            (folder / f"img{index:02d}.txt").write_text("a caption", encoding="utf-8")
            index += 1
    return folder


def test_steps_per_epoch_with_repeats_and_buckets(tmp_path: Path, cache_dir: Path) -> None:
    concept(tmp_path / "10_faery", squares=3)
    concept(tmp_path / "3_castle", wides=2, seed=1)

    report = preflight(discover_concepts(tmp_path), SPEC, batch_size=4, epochs=5, cache_dir=cache_dir)

    assert [(c.name, c.images, c.repeats, c.samples) for c in report.concepts] == [
        ("faery", 3, 10, 30),
        ("castle", 2, 3, 6),
    ]
    assert [(b.size, b.images, b.samples, b.batches_per_epoch, b.skipped_per_epoch) for b in report.buckets] == [
        ((256, 256), 3, 30, 7, 2),
        ((320, 192), 2, 6, 1, 2),
    ]
    assert (report.steps_per_epoch, report.epochs, report.total_steps) == (8, 5, 40)
    assert report.can_train and report.blocking == []
    assert [(i.size, i.never_trains, i.skipped_per_epoch) for i in report.bucket_issues] == [
        ((256, 256), False, 2),
        ((320, 192), False, 2),
    ]


def test_max_steps_sets_the_epochs(tmp_path: Path, cache_dir: Path) -> None:
    concept(tmp_path / "5_x", squares=2)
    report = preflight([ConceptSpec(tmp_path / "5_x")], SPEC, batch_size=2, max_steps=100, cache_dir=cache_dir)
    assert (report.steps_per_epoch, report.total_steps, report.epochs) == (5, 100, 20)


def test_small_bucket_is_named_with_its_images_and_fixes(tmp_path: Path, cache_dir: Path) -> None:
    folder = concept(tmp_path / "faery", squares=4, talls=1)

    report = preflight([ConceptSpec(folder)], SPEC, batch_size=2, cache_dir=cache_dir)

    (issue,) = report.bucket_issues
    assert issue.size == (192, 320) and issue.never_trains
    assert (issue.samples, issue.needed) == (1, 2)
    assert issue.images == (folder / "img04.png",)
    assert issue.fixes[:3] == (
        "lower batch_size to 1",
        "raise repeats of 'faery' from 1 to 2",
        "add 1 more samples of about 192x320 (images x repeats)",
    )
    assert "turn bucketing off" in issue.fixes[3]
    assert report.can_train  # the other bucket trains; this one is a warning
    text = report.render()
    assert "Bucket 192x320 NEVER TRAINS" in text and "faery/img04.png" in text and "lower batch_size to 1" in text


def test_gradient_accumulation_gathers_batches_across_buckets(tmp_path: Path, cache_dir: Path) -> None:
    concept(tmp_path / "3_x", squares=2, wides=1)  # 6 + 3 samples

    report = preflight(
        [ConceptSpec(tmp_path / "3_x")], SPEC, batch_size=2, gradient_accumulation=2, cache_dir=cache_dir
    )

    assert [(b.samples, b.batches_per_epoch, b.skipped_per_epoch) for b in report.buckets] == [(6, 3, 0), (3, 1, 1)]
    assert (report.batches_per_epoch, report.steps_per_epoch) == (4, 2)
    assert not any(issue.never_trains for issue in report.bucket_issues)
    assert "Steps: 4 batches / accumulation 2 = 2 per epoch" in report.render()


def test_gpus_multiply_the_batch_and_too_few_batches_block(tmp_path: Path, cache_dir: Path) -> None:
    """Processes split the epoch's batches (trainer/data.shard): 3 batches for 2 processes is 1 each, fewer
    than accumulation 2. The effective batch is batch x accumulation x processes."""
    folder = concept(tmp_path / "3_x", squares=1)

    report = preflight(
        [ConceptSpec(folder)], SPEC, batch_size=1, gradient_accumulation=2, num_gpus=2, cache_dir=cache_dir
    )
    solo = preflight([ConceptSpec(folder)], SPEC, batch_size=4, cache_dir=cache_dir)

    assert (report.settings["samples_per_batch"], report.settings["samples_per_step"]) == (1, 4)
    assert (report.batches_per_epoch, report.steps_per_epoch) == (3, 0)
    assert report.blocking == ["only 3 batch(es) per epoch for 2 processes, 1 each, fewer than "
                               "gradient_accumulation 2: not one optimizer step"]
    assert "batch 1 x accumulation 2 x 2 GPUs = 4 samples per step" in " ".join(report.render().split())
    assert solo.blocking[0].startswith("no bucket has the 4 samples one batch needs")
    assert solo.bucket_issues[0].fixes[:2] == ("lower batch_size to 3", "raise repeats of 'x' from 3 to 4")


def test_a_bucket_needs_one_process_batch_whatever_the_process_count(tmp_path: Path, cache_dir: Path) -> None:
    """Each process's batch comes from one bucket (trainer/data.epoch_batches), so a bucket of 3 samples
    trains with batch 2 on 2 processes (it was called never-training against batch x processes = 4); the
    processes share the 4 + 1 batches, 2 each, one left over."""
    concept(tmp_path / "3_x", squares=3, wides=1)  # 9 + 3 samples

    two = preflight([ConceptSpec(tmp_path / "3_x")], SPEC, batch_size=2, num_gpus=2, cache_dir=cache_dir)
    one = preflight([ConceptSpec(tmp_path / "3_x")], SPEC, batch_size=2, cache_dir=cache_dir)

    assert [(b.samples, b.batches_per_epoch, b.skipped_per_epoch) for b in two.buckets] == [(9, 4, 1), (3, 1, 1)]
    assert not any(issue.never_trains for issue in two.bucket_issues) and two.can_train
    assert (two.batches_per_epoch, two.steps_per_epoch) == (5, 2)
    assert (one.batches_per_epoch, one.steps_per_epoch) == (5, 5)
    assert "Steps: 5 batches / 2 processes = 2 per epoch" in " ".join(two.render().split())
    assert two.settings["samples_per_step"] == 4


def test_mixed_concepts_in_a_small_bucket(tmp_path: Path, cache_dir: Path) -> None:
    concept(tmp_path / "a", squares=4, talls=1)
    concept(tmp_path / "b", talls=1, seed=1)

    report = preflight(discover_concepts(tmp_path), SPEC, batch_size=4, cache_dir=cache_dir)

    issue = next(i for i in report.bucket_issues if i.size == (192, 320))
    assert issue.never_trains and len(issue.images) == 2
    assert issue.fixes[0] == "lower batch_size to 2"
    assert not any("raise repeats" in fix for fix in issue.fixes)


def test_disabled_bucketing_puts_everything_in_one_square(tmp_path: Path, cache_dir: Path) -> None:
    folder = concept(tmp_path / "x", squares=1, wides=1, talls=1)
    report = preflight(
        [ConceptSpec(folder)], BucketSpec(resolution=256, enabled=False), batch_size=3, cache_dir=cache_dir
    )
    assert [(b.size, b.samples, b.batches_per_epoch) for b in report.buckets] == [((256, 256), 3, 1)]
    assert report.bucket_issues == []


def test_upscaled_captions_and_notes_are_listed(tmp_path: Path, cache_dir: Path) -> None:
    folder = concept(tmp_path / "x", squares=2)
    save(folder / "tiny.png", (64, 64), seed=50)
    Image.new("CMYK", (300, 300), (0, 90, 200, 10)).save(folder / "print.jpg")
    (folder / "print.txt").write_text("   ", encoding="utf-8")

    report = preflight([ConceptSpec(folder)], SPEC, cache_dir=cache_dir)

    assert [(a.path.name, a.original_size, round(a.scale, 2)) for a in report.upscaled] == [("tiny.png", (64, 64), 4.0)]
    assert report.missing_captions == [folder / "tiny.png"]
    assert report.empty_captions == [folder / "print.jpg"]
    assert report.notes == [(folder / "print.jpg", "CMYK: converted to RGB")]


def test_duplicates_exact_and_near(tmp_path: Path, cache_dir: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    save(a / "one.png", (300, 300), seed=1)
    b.mkdir()
    shutil.copy(a / "one.png", b / "copy-of-one.png")
    textured((300, 300), 1).resize((280, 280)).save(a / "one-smaller.jpg", quality=80)
    for seed in range(2, 8):
        save(a / f"other{seed}.png", (300, 300), seed=seed)

    report = preflight([ConceptSpec(a), ConceptSpec(b)], SPEC, cache_dir=cache_dir)

    assert report.exact_duplicates == [[a / "one.png", b / "copy-of-one.png"]]
    assert report.near_duplicates == [[a / "one-smaller.jpg", a / "one.png", b / "copy-of-one.png"]]


def test_full_check_finds_files_that_do_not_decode_and_caches_hashes(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = concept(tmp_path / "x", squares=3)
    data = (folder / "img01.png").read_bytes()
    (folder / "img01.png").write_bytes(data[: len(data) // 2] + data[-12:])  # pixel data cut, IEND kept

    first = preflight([ConceptSpec(folder)], SPEC, cache_dir=cache_dir)
    quick = preflight([ConceptSpec(folder)], SPEC, cache_dir=tmp_path / "other-cache", full_check=False)
    hashed: list[int] = []
    real = usable_module.hash_files
    monkeypatch.setattr(usable_module, "hash_files", lambda paths: hashed.append(len(paths)) or real(paths))
    second = preflight([ConceptSpec(folder)], SPEC, cache_dir=cache_dir)

    assert [(p.path.name, p.reason.split(":")[0]) for p in first.unreadable] == [("img01.png", "cannot decode")]
    assert first.concepts[0].images == 2
    assert quick.unreadable == [] and quick.concepts[0].images == 3  # headers alone cannot tell
    assert hashed == [0]  # nothing decoded again
    assert second.unreadable == first.unreadable


def test_blocking_reasons(tmp_path: Path, cache_dir: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "zero.png").write_bytes(b"")
    (bad / "text.jpg").write_text("nope", encoding="utf-8")

    no_images = preflight([ConceptSpec(bad)], SPEC, cache_dir=cache_dir)
    missing = preflight([ConceptSpec(tmp_path / "nowhere")], SPEC, cache_dir=cache_dir)
    no_prompts = preflight([ConceptSpec(bad, caption="prompt-file")], SPEC, cache_dir=cache_dir)
    nothing = preflight([], SPEC, cache_dir=cache_dir)
    silly = preflight([ConceptSpec(bad)], SPEC, batch_size=0, cache_dir=cache_dir)

    assert not no_images.can_train and no_images.blocking == ["no usable image (2 files could not be read)"]
    assert not missing.can_train and "concept folder not found" in missing.blocking[0]
    assert any("prompt file not found" in reason for reason in no_prompts.blocking)
    assert nothing.blocking == ["no concept folders given"]
    assert silly.blocking == ["batch_size must be at least 1, got 0"]
    assert "CANNOT TRAIN" in no_images.render() and "no usable image" in no_images.render()


def test_to_dict_is_json_with_stable_keys(tmp_path: Path, cache_dir: Path) -> None:
    folder = concept(tmp_path / "2_x", squares=1, talls=1)
    (folder / "zero.png").write_bytes(b"")

    data = json.loads(json.dumps(preflight([ConceptSpec(folder)], SPEC, batch_size=2, cache_dir=cache_dir).to_dict()))

    assert data["version"] == 5
    assert sorted(data) == sorted(
        [
            "version",
            "disabled",
            "can_train",
            "blocking",
            "settings",
            "root",
            "concepts",
            "buckets",
            "bucket_issues",
            "steps",
            "upscaled",
            "missing_captions",
            "empty_captions",
            "exact_duplicates",
            "near_duplicates",
            "near_duplicate_bits",
            "hash_bits",
            "unreadable",
            "notes",
            "unused_folders",
            "images",
        ]
    )
    assert data["buckets"][0] == {
        "width": 192,
        "height": 320,
        "images": 1,
        "samples": 2,
        "batches_per_epoch": 1,
        "skipped_per_epoch": 0,
        "samples_by_concept": {"x": 2},
    }
    assert data["steps"] == {
        "samples_per_batch": 2,
        "samples_per_step": 2,
        "batches_per_epoch": 2,
        "per_epoch": 2,
        "epochs": 1,
        "total": 2,
    }
    assert data["unreadable"] == [{"path": str(folder / "zero.png"), "reason": "empty file (0 bytes)"}]
    assert data["images"][1] == {
        "path": str(folder / "img01.png"),
        "concept": "x",
        "width": 300,
        "height": 500,
        "bucket": [192, 320],
        "crop_box": [0, 0, 300, 500],
    }


def test_done_when_every_bad_case_is_named_and_cull_undo_is_byte_identical(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's acceptance test: good images mixed with every bad case."""
    folder = concept(tmp_path / "10_faery", squares=3, wides=2)
    buffer = io.BytesIO()
    textured((300, 200), 7).save(buffer, "JPEG")
    whole = buffer.getvalue()
    (folder / "zero byte.png").write_bytes(b"")
    (folder / "cut.jpg").write_bytes(whole[: len(whole) // 2])
    png = (folder / "img00.png").read_bytes()
    (folder / "cut.png").write_bytes(png[: len(png) // 2])
    (folder / "letter.png").write_text("Dear diary", encoding="utf-8")
    png_with_declared_size(folder / "bomb.png", 40_000, 40_000)
    Image.new("CMYK", (300, 300), (10, 200, 30, 0)).save(folder / "cmyk.jpg")
    Image.new("I;16", (300, 300), 20000).save(folder / "deep.png")
    textured((300, 300), 60).convert("P").save(folder / "palette.png")
    textured((300, 300), 61).convert("RGBA").save(folder / "alpha.png")
    frames = [textured((300, 300), s) for s in (62, 63)]
    frames[0].save(folder / "anim.gif", save_all=True, append_images=frames[1:])
    frames[0].save(folder / "anim.webp", save_all=True, append_images=frames[1:])
    save(folder / "été 猫 (1).png", (300, 300), seed=64)
    os.symlink("gone.png", folder / "broken link.png")
    locked = save(folder / "locked.png", (300, 300), seed=65)
    before = tree_snapshot(folder)
    make_unreadable(locked, monkeypatch)

    report = preflight(discover_concepts(tmp_path), SPEC, batch_size=2, cache_dir=cache_dir)
    text = report.render()

    reasons = {p.path.name: p.reason for p in report.unreadable}
    assert sorted(reasons) == [
        "bomb.png",
        "broken link.png",
        "cut.jpg",
        "cut.png",
        "letter.png",
        "locked.png",
        "zero byte.png",
    ]
    for name, reason in reasons.items():
        assert f"10_faery/{name}: {reason}" in text.replace("\n      ", " ")  # unwrapped
    assert "empty file (0 bytes)" in text and "permission denied" in text and "broken symlink" in text
    assert "not an image: the file holds text" in text and "too large to decode safely" in text
    assert text.count("truncated") >= 2
    assert "256x256" in text and "Steps: " in text and "CAN TRAIN" in text
    handled = {path.name for path, _note in report.notes}
    assert {"cmyk.jpg", "deep.png", "alpha.png", "anim.gif", "anim.webp"} <= handled
    assert report.concepts[0].images == 12  # 5 plain + cmyk, deep, palette, alpha, 2 animated, unicode
    assert all(len(line) <= 80 for line in text.splitlines())

    entries = [cull(folder / name) for name in sorted(reasons)]
    assert len(entries) == 7
    while undo(folder):
        pass
    monkeypatch.undo()
    os.chmod(locked, 0o644)  # chmod does not touch content or mtime; it lets the snapshot read it
    assert tree_snapshot(folder) == before
