"""The usable-image rule on the files issue 14 found: named in the report, never a crash, hang or runaway.

What the trainer does with the same files is in tests/trainer/test_usable_images.py; the
two agreeing on a generated corpus is tests/dataset/test_corpus_verdict.py.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from PIL import EpsImagePlugin, Image

from tuitrain.dataset import BucketSpec, ConceptSpec, preflight, scan_concept
from tuitrain.tui.review.model import ReviewModel
from tuitrain.tui.review.source import ReviewSource

from . import badfiles as bad
from .bounded import GIB, run_bounded, tuitrain
from .conftest import png_with_declared_size, save

SPEC = BucketSpec(resolution=512)  # buckets up to 640x384: images up to 6.67:1 are taken


def verdicts(folder: Path, cache_dir: Path, *, full_check: bool = True, spec: BucketSpec = SPEC) -> dict[str, str]:
    """name -> 'used' or the reason the pre-flight gives for not using it."""
    report = preflight([ConceptSpec(folder)], spec, cache_dir=cache_dir, full_check=full_check)
    found = {path.name: "used" for path in report.assignments}
    found.update({problem.path.name: problem.reason for problem in report.unreadable})
    return found


def test_only_supported_formats_are_opened_whatever_the_extension(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pillow opens ~40 formats by content; a PPM saved as .png used to train, and an EPS was
    # handed to Ghostscript. Now only JPEG/PNG/WebP/GIF/BMP/TIFF(/AVIF) are ever parsed.
    opened_eps: list[str] = []
    real_open = EpsImagePlugin.EpsImageFile._open
    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "_open", lambda self: opened_eps.append("eps") or real_open(self))
    bad.write(tmp_path / "ppm.png", bad.encoded("PPM"))
    bad.write(tmp_path / "tga.jpg", bad.encoded("TGA"))
    bad.write(tmp_path / "pcx.png", bad.encoded("PCX"))
    bad.write(tmp_path / "sgi.bmp", bad.encoded("SGI"))
    bad.write(tmp_path / "icon.png", bad.encoded("ICO"))
    bad.eps(tmp_path / "drawing.png")
    bad.psd(tmp_path / "layers.jpg")
    bad.write(tmp_path / "png-named.jpg", bad.encoded("PNG"))  # a supported format, wrong extension: fine

    found = verdicts(tmp_path, cache_dir)

    assert found.pop("png-named.jpg") == "used"
    assert found.pop("drawing.png") == "unsupported format: the file holds PostScript (EPS); convert it to PNG or JPEG"
    assert found.pop("layers.jpg").startswith("unsupported format: the file holds a Photoshop document (PSD)")
    assert found.pop("icon.png") == "unsupported format: the file holds an icon (ICO); convert it to PNG or JPEG"
    assert found == dict.fromkeys(["ppm.png", "tga.jpg", "pcx.png", "sgi.bmp"],
                                  "not an image (unknown, unsupported or damaged format)")
    assert opened_eps == []


def test_zero_sized_image_is_refused_and_the_review_model_takes_it(tmp_path: Path, cache_dir: Path) -> None:
    # A 0x0 WMF named .png once reached nearest_bucket: ZeroDivisionError in the review screen,
    # the quick check and the trainer.
    save(tmp_path / "a.png", (64, 64))
    (tmp_path / "a.txt").write_text("a picture")
    bad.wmf_zero_size(tmp_path / "zero.png")

    assert verdicts(tmp_path, cache_dir, full_check=False)["zero.png"].startswith("unsupported format")
    model = ReviewModel(ReviewSource.from_folder(tmp_path, resolution=64), cache_dir=cache_dir)
    model.load()
    model.apply_report(*model.compute_report(full_check=False))
    flags = {item.name: [flag.text for flag in model.flags(item)] for item in model.items}
    assert flags["a.png"] == []
    assert flags["zero.png"] == ["unreadable: unsupported format: the file holds a Windows metafile (WMF); "
                                 "convert it to PNG or JPEG"]


def test_aspect_ratios_bucketing_cannot_take_are_refused_naming_the_file(tmp_path: Path, cache_dir: Path) -> None:
    bad.strip_png(tmp_path / "strip.png", 1, 50_000)  # 181 bytes; ~29 GB once scaled to cover its bucket
    bad.strip_png(tmp_path / "line.png", 5000, 1)
    bad.strip_png(tmp_path / "thread.png", 1, 20_000_000)  # OverflowError at resize
    bad.strip_png(tmp_path / "six.png", 60, 360)  # 6:1, under the 6.67:1 the 384x640 bucket allows
    bad.strip_png(tmp_path / "seven.png", 700, 100)

    report = preflight([ConceptSpec(tmp_path)], SPEC, cache_dir=cache_dir)
    found = {problem.path.name: problem.reason for problem in report.unreadable}

    assert [path.name for path in report.assignments] == ["six.png"]
    assert found["strip.png"] == ("aspect ratio 50,000:1 (1x50000) is beyond what bucketing allows (at most 6.667:1): "
                                  "its 384x640 bucket would keep 0.0033% of it; crop it to a less extreme shape")
    assert found["thread.png"].startswith("aspect ratio 20,000,000:1 (1x20000000) is beyond")
    assert found["line.png"].startswith("aspect ratio 5,000:1 (5000x1) is beyond")
    assert found["seven.png"].startswith("aspect ratio 7:1 (700x100) is beyond what bucketing allows (at most 6.667:1)")
    text = report.render()
    assert all(f"{name}: aspect ratio" in text for name in ("strip.png", "line.png", "thread.png", "seven.png"))


def test_the_pixel_bound_is_tuitrains_not_whatever_pillow_was_set_to(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A library in the trainer's process may set Image.MAX_IMAGE_PIXELS = None; check and
    # train must still agree that a 144 MP image is not decoded.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    png_with_declared_size(tmp_path / "bomb.png", 12_000, 12_000)
    assert verdicts(tmp_path, cache_dir, full_check=False)["bomb.png"] == (
        "too large to decode safely: 12000x12000 = 144.0 MP (limit 89.5 MP); not decoded"
    )


def _config(tmp_path: Path, concept: str, name: str = "run.toml") -> Path:
    config = tmp_path / name
    config.write_text(f"[model]\nbase = \"{tmp_path / 'model.safetensors'}\"\n[data]\nresolution = 64\n"
                      f"[[data.concepts]]\n{concept}\n", encoding="utf-8")
    (tmp_path / "model.safetensors").write_bytes(b"x")
    return config


@pytest.mark.parametrize("target", ["/dev/zero", "fifo"])
def test_a_prompt_file_that_is_not_a_regular_file_is_refused_at_once(tmp_path: Path, target: str) -> None:
    # prompt_file = "/dev/zero" grew `check` by 0.5 GB/s forever; a FIFO blocked it.
    folder = tmp_path / "data"
    save(folder / "a.png")
    prompts = target if target.startswith("/") else str(bad.fifo(tmp_path / "prompts.txt"))
    out = tuitrain("check", "--json", str(_config(tmp_path, f'path = "{folder}"\ncaption = "prompt-file"\n'
                                                            f'prompt_file = "{prompts}"')), timeout=60)
    kind = "a character device" if target.startswith("/") else "a FIFO (named pipe)"
    assert out.returncode == 1 and out.stderr == "", out.stderr
    assert json.loads(out.stdout)["data"]["blocking"] == [
        f"concept 'data': prompt file unreadable: {prompts}: not a regular file: it is {kind}"
    ]


def test_files_that_are_not_regular_are_named_and_never_read(tmp_path: Path) -> None:
    # A FIFO caption blocked the scan forever; a caption linked to /dev/zero took 5.8 GB in 10 s.
    save(tmp_path / "a.png", seed=1)
    bad.fifo(tmp_path / "a.txt")
    save(tmp_path / "b.png", seed=2)
    bad.link(tmp_path / "b.txt", "/dev/zero")
    save(tmp_path / "c.png", seed=3)
    (tmp_path / "c.txt").write_bytes(b"tag, " * 300_000)  # 1.5 MB: past the 1 MiB a caption may have
    bad.fifo(tmp_path / "pipe.png")
    bad.link(tmp_path / "zero.jpg", "/dev/zero")

    out = tuitrain("check", "--data", str(tmp_path), "--json", timeout=60)

    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert {Path(p["path"]).name: p["reason"] for p in report["unreadable"]} == {
        "pipe.png": "not a regular file: it is a FIFO (named pipe)",
        "zero.jpg": "not a regular file: it is a character device",
    }
    notes = {(Path(n["path"]).name, n["note"]) for n in report["notes"]}
    assert notes == {
        ("a.png", "caption a.txt not read: not a regular file: it is a FIFO (named pipe)"),
        ("b.png", "caption b.txt not read: not a regular file: it is a character device"),
        ("c.png", "caption c.txt not read: too large: 1.4 MiB (at most 1 MiB is read)"),
    }
    assert sorted(Path(p).name for p in report["missing_captions"]) == ["a.png", "b.png", "c.png"]


BAD_PATHS = {
    "a NUL": ("a\x00b", "must not contain a NUL character"),
    "an unknown ~user": ("~nosuchuser/x", "~nosuchuser is the home folder of user 'nosuchuser', who does not exist"),
    "a 300-byte name": ("/tmp/" + "x" * 300, "has a name of 300 bytes, over the 255 a file system allows"),
}


@pytest.mark.parametrize("mistake", BAD_PATHS)
def test_a_path_no_file_system_takes_is_one_line_naming_the_key(tmp_path: Path, mistake: str) -> None:
    # Each was a traceback (ValueError: embedded null byte, RuntimeError, OSError: File name too long).
    value, said = BAD_PATHS[mistake]
    save(tmp_path / "data" / "a.png")
    toml_value = json.dumps(value)  # a TOML basic string: \u0000 for the NUL
    runs = [
        ("check", str(_config(tmp_path, f'path = "{tmp_path / "data"}"\ncaption = "prompt-file"\n'
                                        f"prompt_file = {toml_value}", "prompts.toml")),
         "data.concepts[0].prompt_file: "),
        ("check", str(_config(tmp_path, f"path = {toml_value}")), "data.concepts[0].path: "),
        ("train", str(tmp_path / "run.toml"), "data.concepts[0].path: "),
    ]
    if "\x00" not in value:  # a NUL cannot be in a command-line argument at all
        runs += [("check", "--data", value, "--data: "), ("new", "r1", "--data", value, "--data: "),
                 ("cull", value, ""), ("train", value, ""), ("check", value, "")]
    for *args, key in runs:
        out = tuitrain(*args, timeout=60)
        lines = out.stderr.strip().splitlines()
        assert out.returncode == 2 and len(lines) == 1, (args, out.stdout, out.stderr)
        assert key + said in lines[0], (args, lines)


def test_pillow_warnings_become_notes_on_the_file_not_stderr(tmp_path: Path) -> None:
    for seed in range(3):  # the same warning on three files: each gets its note
        bad.jpeg_corrupt_exif(tmp_path / f"exif{seed}.jpg", seed)
    bad.tiff_bad_tag(tmp_path / "tags.tif")

    out = tuitrain("check", "--data", str(tmp_path), "--json", timeout=60)

    assert out.returncode == 0 and out.stderr == "", out.stderr  # was: UserWarning lines naming TiffImagePlugin.py
    notes = {(Path(n["path"]).name, n["note"]) for n in json.loads(out.stdout)["notes"]}
    corrupt = "Pillow warns: Corrupt EXIF data. Expecting to read 12 bytes but only got 10."
    assert notes == {(f"exif{seed}.jpg", corrupt) for seed in range(3)} | {
        ("tags.tif", "Pillow warns: Tag data larger than file. Skipping tag 270")
    }


def test_catching_pillow_warnings_leaves_the_warnings_module_as_it_was(tmp_path: Path, cache_dir: Path) -> None:
    # The pre-flight decodes on threads; the capture must neither leak its hook nor swallow others' warnings.
    for seed in range(8):
        bad.jpeg_corrupt_exif(tmp_path / f"exif{seed}.jpg", seed)
    show, filters = warnings.showwarning, list(warnings.filters)

    report = preflight([ConceptSpec(tmp_path)], SPEC, cache_dir=cache_dir)

    assert len(report.assignments) == 8 and len({path for path, _ in report.notes}) == 8
    assert warnings.showwarning is show and warnings.filters == filters
    with pytest.warns(UserWarning, match="still mine"):
        warnings.warn("still mine", UserWarning, stacklevel=1)


def test_a_fifo_named_like_an_image_is_named_as_one(tmp_path: Path, cache_dir: Path) -> None:
    bad.fifo(tmp_path / "x.png")
    save(tmp_path / "y.png")
    scan = scan_concept(ConceptSpec(tmp_path), cache_dir=cache_dir)
    problems = [(p.path.name, p.reason) for p in scan.problems]
    assert problems == [("x.png", "not a regular file: it is a FIFO (named pipe)")]


_EDIT_CAPTION = """
import sys
from pathlib import Path
from tuitrain.dataset import read_caption, write_caption
image = Path(sys.argv[1])
print(read_caption(image))
try:
    write_caption(image, "new words")
except OSError as error:
    print(error)
"""


def test_editing_a_caption_that_is_a_fifo_neither_blocks_nor_replaces_it(tmp_path: Path) -> None:
    # The review screen's c (edit caption) read the caption file whole: a FIFO blocked the UI for good.
    image = save(tmp_path / "a.png")
    bad.fifo(tmp_path / "a.txt")
    out = run_bounded(["-c", _EDIT_CAPTION, str(image)], timeout=60, memory=GIB)
    assert out.stdout.splitlines() == ["None", "a.txt: not a regular file: it is a FIFO (named pipe)"], out.stderr
    assert (tmp_path / "a.txt").is_fifo()
