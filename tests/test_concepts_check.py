"""Regularisation concepts and per-concept settings as `tuitrain new` / `tuitrain check` see them (issue 22)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from PIL import Image

from tests.test_commands_agree import fake_base
from tuitrain.config import load_config


def _images(folder: Path, count: int, size: tuple[int, int] = (512, 512), caption: str = "a dog") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.new("RGB", size, (i * 20 % 256, 90, 200 - i)).save(folder / f"{i}.png")
        (folder / f"{i}.txt").write_text(caption)
    return folder


def kohya_ss_tree(parent: Path) -> Path:
    """kohya_ss's folder preparation: img/10_sks dog (3), img/5_sks toy (2, portrait), reg/1_dog (7), log/, model/."""
    _images(parent / "img" / "10_sks dog", 3)
    _images(parent / "img" / "5_sks toy", 2, (512, 768))
    _images(parent / "reg" / "1_dog", 7, caption="a dog")
    (parent / "log").mkdir()
    (parent / "model").mkdir()
    return parent


def test_kohya_reg_layout_is_one_rule_for_new_and_check(cli, workspace: Path, tmp_path: Path) -> None:
    data = kohya_ss_tree(tmp_path / "proj")
    by_folder = cli("check", "--data", str(data), "--json")
    assert by_folder.returncode == 0, by_folder.stdout + by_folder.stderr
    folder_report = json.loads(by_folder.stdout)
    concepts = [(c["name"], c["role"], c["images"], c["samples"], c["balanced"]) for c in folder_report["concepts"]]
    # kohya repeats the reg images to the train images x repeats (3x10 + 2x5 = 40); log/ and model/ are no concepts
    assert concepts == [("sks dog", "train", 3, 30, False), ("sks toy", "train", 2, 10, False),
                        ("dog", "regularisation", 7, 40, True)]
    assert [c["share"] for c in folder_report["concepts"]] == [0.375, 0.125, 0.5]
    assert folder_report["steps"]["per_epoch"] == 80

    out = cli("new", "dog", "--preset", "sd15-lora", "--data", str(data), "--base", str(fake_base(tmp_path)))
    assert out.returncode == 0, out.stderr
    assert "regularisation (reg/): dog" in out.stdout
    config = load_config(workspace / "dog" / "config.toml")
    assert [(Path(c.path).name, c.role) for c in config.data.concepts] == [
        ("10_sks dog", "train"), ("5_sks toy", "train"), ("1_dog", "regularisation")]
    by_run = cli("check", "dog", "--json")
    assert by_run.returncode == 0, by_run.stdout + by_run.stderr
    run_report = json.loads(by_run.stdout)["data"]
    assert run_report["concepts"] == folder_report["concepts"]
    assert run_report["steps"]["per_epoch"] == 80

    text = " ".join(cli("check", "dog").stdout.split())
    assert "share role" in text and "dog 7 ~5.71 40 50% reg per-image" in text
    assert "regularisation: 40 samples per epoch beside 40 train samples (balanced to the train samples" in text


def test_explicit_repeats_or_samples_replace_the_reg_balance(cli, workspace: Path, tmp_path: Path) -> None:
    data = kohya_ss_tree(tmp_path / "proj")
    assert cli("new", "dog", "--preset", "sd15-lora", "--data", str(data), "--base", str(fake_base(tmp_path))).returncode == 0
    for setting, samples, steps in (("repeats=2", 14, 54), ("samples_per_epoch=9", 9, 49)):
        out = cli("check", "dog", "--json", "--set", f"data.concepts[2].{setting}")
        report = json.loads(out.stdout)["data"]
        assert report["concepts"][2]["samples"] == samples, setting
        assert report["steps"]["per_epoch"] == steps, setting


def test_per_concept_resolution_weight_and_enabled_show_in_check(cli, workspace: Path, tmp_path: Path) -> None:
    big = _images(tmp_path / "big", 2, (1024, 1024))
    small = _images(tmp_path / "small", 4, (512, 512))
    off = _images(tmp_path / "off", 5, (512, 512))
    concepts = (f'data.concepts=[{{path="{big}", resolution=256, loss_weight=0.5}}, {{path="{small}"}}, '
                f'{{path="{off}", enabled=false}}]')
    out = cli("new", "mix", "--preset", "sd15-lora", "--base", str(fake_base(tmp_path)), "--set", concepts)
    assert out.returncode == 0, out.stderr
    report = json.loads(cli("check", "mix", "--json").stdout)["data"]
    assert [(c["name"], c["resolution"], c["loss_weight"]) for c in report["concepts"]] == [
        ("big", 256, 0.5), ("small", 512, 1.0)]
    assert report["disabled"] == ["off"]
    assert {(b["width"], b["height"]): b["samples_by_concept"] for b in report["buckets"]} == {
        (256, 256): {"big": 2}, (512, 512): {"small": 4}}
    assert all(i["bucket"] == [256, 256] for i in report["images"] if i["concept"] == "big")
    text = " ".join(cli("check", "mix").stdout.split())
    assert "share weight res" in text and "big 2 1 2 33% 0.5 256" in text
    assert "left out (enabled = false): off" in text
    shutil.rmtree(off)  # a concept left out may be a folder that is not there
    assert cli("check", "mix").returncode == 0


def test_bad_concept_settings_are_one_line_naming_the_key(cli, workspace: Path, tmp_path: Path) -> None:
    data = _images(tmp_path / "d", 2)
    assert cli("new", "r", "--preset", "sd15-lora", "--data", str(data), "--base", str(fake_base(tmp_path))).returncode == 0
    for setting, said in (
        ("data.concepts[0].resolution=100", "data.concepts[0].resolution: must be a multiple of 8"),
        ("data.concepts[0].resolution=520", "data.concepts[0].resolution: must be a multiple of data.bucket_step (64)"),
        ("data.concepts[0].loss_weight=-1", "data.concepts[0].loss_weight: must be >= 0"),
        ("data.concepts[0].caption_dropout=2", "data.concepts[0].caption_dropout: must be <= 1"),
        ("data.concepts[0].samples_per_epoch=0", "data.concepts[0].samples_per_epoch: must be >= 1"),
        ("data.concepts[0].class_images=5", "data.concepts[0].class_images: only a role = 'regularisation' concept"),
        ('data.concepts[0].flip="yes"', 'data.concepts[0].flip: must be true or false (or left out), got "yes"'),
    ):
        out = cli("check", "r", "--set", setting)
        assert out.returncode == 2, setting
        assert said in out.stderr, (setting, out.stderr)
        assert "Traceback" not in out.stderr
    reg = cli("check", "r", "--set", "data.concepts[0].role=regularisation", "--set", "data.concepts[0].class_images=5")
    assert reg.returncode == 2 and "data.concepts[0].class_images: they are drawn from the class prompt" in reg.stderr
    both = cli("check", "r", "--set", "data.concepts[0].repeats=2", "--set", "data.concepts[0].samples_per_epoch=3")
    assert both.returncode == 2 and "data.concepts[0].samples_per_epoch: balances the concept instead of repeats" in both.stderr


def test_a_validation_concept_takes_no_share_of_the_epoch(cli, workspace: Path, tmp_path: Path) -> None:
    train = _images(tmp_path / "3_train", 4)
    held = _images(tmp_path / "held", 6)
    concepts = f'data.concepts=[{{path="{train}"}}, {{path="{held}", role="validation"}}]'
    assert cli("new", "v", "--preset", "sd15-lora", "--base", str(fake_base(tmp_path)), "--set", concepts).returncode == 0
    report = json.loads(cli("check", "v", "--json").stdout)["data"]
    assert [(c["name"], c["samples"], c["share"]) for c in report["concepts"]] == [("train", 12, 1.0), ("held", 0, 0.0)]
    assert report["steps"]["per_epoch"] == 12  # what the trainer runs: the held-out images never train


def test_check_passes_a_class_images_folder_the_trainer_has_yet_to_make(cli, workspace: Path, tmp_path: Path) -> None:
    train = _images(tmp_path / "5_train", 4)
    concepts = (f'data.concepts=[{{path="{train}"}}, {{path="{tmp_path / "class"}", role="regularisation", '
                f'caption="instance", instance_prompt="photo of a dog", class_images=50, loss_weight=0.7}}]')
    assert cli("new", "c", "--preset", "sd15-lora", "--base", str(fake_base(tmp_path)), "--set", concepts).returncode == 0
    out = cli("check", "c")
    assert out.returncode == 0, out.stdout + out.stderr
    said = " ".join(out.stdout.split())
    assert "class 50 ~0.4 20 50% reg 0.7 instance" in said
    assert "50 of 50 class images are still to be drawn" in said and "Steps: 40 per epoch" in said
