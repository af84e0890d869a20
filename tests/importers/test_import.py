"""`tuitrain import`: each trainer's documented config (our own fixtures, written from their documented keys)
becomes a tuitrain config that `tuitrain check` passes, with the settings it could say, and the rest listed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image

from tuitrain.config import load_config

FIXTURES = Path(__file__).parent / "fixtures"
PIPELINES = {"sd15": "StableDiffusionPipeline", "sdxl": "StableDiffusionXLPipeline", "flux": "FluxPipeline"}


def _images(folder: Path, count: int, caption: str | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.new("RGB", (128, 128), (i * 40 % 256, 120, 60)).save(folder / f"{i}.png")
        if caption is not None:
            (folder / f"{i}.txt").write_text(caption)


def _model(folder: Path, family: str) -> None:
    folder.mkdir(parents=True)
    (folder / "model_index.json").write_text(f'{{"_class_name": "{PIPELINES[family]}"}}')


def _tree(tmp_path: Path, trainer: str) -> Path:
    """The fixture folder copied, with the images and the (header-only) base model its paths name."""
    root = tmp_path / trainer
    shutil.copytree(FIXTURES / trainer, root)
    if trainer == "kohya":
        _model(root / "models" / "sd15", "sd15")
        _images(root / "data" / "img" / "10_sks dog", 3)
        _images(root / "data" / "reg" / "1_dog", 5)
        _images(root / "data" / "hires", 2, "a dog, high resolution")
    elif trainer == "kohya_ss":
        _model(root / "models" / "sdxl", "sdxl")
        _images(root / "data" / "img" / "20_ohwx style", 4, "ohwx style, a house")
        _images(root / "data" / "reg" / "1_style", 6, "a house")
    elif trainer == "onetrainer":
        _model(root / "models" / "sd15", "sd15")
        _images(root / "data" / "faery", 4, "a faery, wings")
        _images(root / "data" / "styles", 3)
        (root / "data" / "styles" / "prompts.txt").write_text("a watercolour painting\nan ink drawing\n")
    else:
        _model(root / "models" / "flux", "flux")
        _images(root / "datasets" / "subject", 4)
        _images(root / "datasets" / "regularisation", 6, "a cat")
    return root


CASES = {
    "kohya": "train_network.toml",
    "kohya_ss": "sdxl_lora.json",
    "onetrainer": "sd15_lora.json",
    "simpletuner": "config/config.json",
}


@pytest.mark.parametrize("trainer", list(CASES))
def test_each_trainers_config_imports_into_one_that_check_passes(trainer: str, cli, workspace: Path,
                                                                 tmp_path: Path) -> None:
    root = _tree(tmp_path, trainer)
    out = tmp_path / f"{trainer}.toml"
    imported = cli("import", str(root / CASES[trainer]), "--out", str(out))
    assert imported.returncode == 0, imported.stderr
    assert "not mapped (" in imported.stderr
    check = cli("check", str(out))
    assert check.returncode == 0, check.stdout + check.stderr
    assert "CAN TRAIN" in check.stdout
    assert out.read_text().startswith(f"# Imported by `tuitrain import` from {root / CASES[trainer]}")


def test_kohya_sd_scripts_arguments_and_dataset_config(cli, workspace: Path, tmp_path: Path) -> None:
    root = _tree(tmp_path, "kohya")
    out = tmp_path / "k.toml"
    done = cli("import", str(root / "train_network.toml"), "--out", str(out))
    assert done.returncode == 0, done.stderr
    c = load_config(out)
    assert (c.model.family, c.model.base, c.model.clip_skip) == ("sd15", str(root / "models" / "sd15"), 2)
    assert (c.lora.type, c.lora.rank, c.lora.alpha, c.lora.train_conv, c.lora.conv_rank) == ("lora", 32, 16, True, 8)
    assert (c.lora.train_text_encoder, c.lora.text_encoder_lr) == (True, 5e-5)
    assert (c.optimizer.name, c.optimizer.weight_decay, c.optimizer.beta2) == ("adamw8bit", 0.05, 0.99)
    assert (c.training.lr_scheduler, c.training.lr_cycles, c.training.lr_warmup_steps) == ("cosine_with_restarts", 3, 100)
    assert (c.training.epochs, c.training.max_steps, c.training.batch_size, c.training.seed) == (10, None, 2, 1234)
    assert (c.training.min_snr_gamma, c.training.noise_offset, c.training.mixed_precision) == (5.0, 0.05, "bf16")
    assert (c.data.resolution, c.data.shuffle_tags, c.data.keep_tags, c.data.workers) == (512, True, 1, 4)
    concepts = [(Path(x.path).name, x.role, x.repeats, x.caption, x.instance_prompt, x.resolution, x.flip, x.loss_weight)
                for x in c.data.concepts]
    assert concepts == [
        ("10_sks dog", "train", 10, "instance", "sks dog", None, None, 1.0),
        ("1_dog", "regularisation", None, "instance", "dog", None, None, 0.8),  # balanced, prior_loss_weight
        ("hires", "train", 2, "per-image", "", 768, True, 1.0),  # the second dataset's resolution
    ]
    assert [(p.prompt, p.negative_prompt, p.width, p.height, p.seed, p.cfg, p.steps) for p in c.sampling.prompts] == [
        ("sks dog sitting on a bench", "blurry, lowres", 512, 768, 1, 7.5, 28),
        ("a photo of a dog", None, None, None, 2, None, None)]
    assert (c.sampling.sampler, c.saving.name, c.saving.every_epochs) == ("euler_a", "sks_dog", 2)
    said = done.stderr
    for line in ("max_train_steps = 1600: max_train_epochs overrides it, as in sd-scripts",
                 "dataset_config:datasets[1].batch_size = 1: one batch size for the whole run",
                 "dataset_config:datasets[1].subsets[0].color_aug = True", "xformers = True",
                 "max_token_length = 225"):
        assert line in said, line
    assert "learning_rate" not in said and "v2" not in said  # mapped (unet_lr wins), or only "off"


def test_kohya_ss_gui_json(cli, workspace: Path, tmp_path: Path) -> None:
    root = _tree(tmp_path, "kohya_ss")
    out = tmp_path / "g.toml"
    done = cli("import", str(root / "sdxl_lora.json"), "--out", str(out))
    assert done.returncode == 0, done.stderr
    c = load_config(out)
    assert (c.model.family, c.data.resolution, c.training.epochs, c.training.seed) == ("sdxl", 1024, 8, 12345)
    assert (c.optimizer.name, c.optimizer.relative_step, c.optimizer.scale_parameter) == ("adafactor", False, False)
    assert (c.training.lr_scheduler, c.training.lr_warmup_fraction, c.training.gradient_accumulation) == ("cosine", 0.1, 2)
    assert (c.objective.multires_noise_iterations, c.data.caption_dropout, c.lora.train_text_encoder) == (6, 0.05, False)
    assert [(Path(x.path).name, x.role) for x in c.data.concepts] == [("20_ohwx style", "train"),
                                                                      ("1_style", "regularisation")]
    assert "sdxl_no_half_vae = True" in done.stderr and "max_bucket_reso = 2048" in done.stderr
    assert "warmup_init" not in done.stderr  # an optimizer argument left off asks for nothing


def test_onetrainer_json(cli, workspace: Path, tmp_path: Path) -> None:
    root = _tree(tmp_path, "onetrainer")
    out = tmp_path / "o.toml"
    done = cli("import", str(root / "sd15_lora.json"), "--out", str(out))
    assert done.returncode == 0, done.stderr
    c = load_config(out)
    assert (c.training.method, c.training.epochs, c.training.batch_size, c.training.lr_warmup_steps) == ("lora", 20, 2, 50)
    assert (c.optimizer.name, c.optimizer.kernel, c.lora.rank, c.lora.alpha) == ("adamw", "fused", 16, 8.0)
    assert (c.lora.train_text_encoder, c.lora.text_encoder_lr, c.training.text_encoder_max_epochs) == (True, 5e-5, 10)
    assert (c.training.min_snr_gamma, c.training.noise_offset, c.data.shuffle_tags) == (5.0, 0.05, True)
    faery, style = c.data.concepts
    assert (faery.name, faery.repeats, faery.flip, faery.crop_jitter, faery.caption) == ("faery", 3, True, True, "per-image")
    assert (style.samples_per_epoch, style.loss_weight, style.resolution, style.caption) == (20, 0.5, 384, "prompt-file")
    assert style.prompt_file == str(root / "data" / "styles" / "prompts.txt")
    assert [p.prompt for p in c.sampling.prompts] == ["a faery in a forest"]  # the disabled sample is left out
    assert (c.sampling.every_epochs, c.saving.every_epochs, c.saving.name, c.saving.backup_keep_last) == (2, 5, "faery_lora", 3)
    assert "attention_mechanism = \"SDP\"" in done.stderr and "__version" not in done.stderr


def test_simpletuner_config_and_multidatabackend(cli, workspace: Path, tmp_path: Path) -> None:
    root = _tree(tmp_path, "simpletuner")
    out = tmp_path / "s.toml"
    done = cli("import", str(root / "config" / "config.json"), "--out", str(out))
    assert done.returncode == 0, done.stderr
    c = load_config(out)
    assert (c.model.family, c.model.quantize, c.lora.targets, c.optimizer.name) == ("flux", "int8", "all", "adamw_bf16")
    assert (c.training.max_steps, c.training.learning_rate, c.training.lr_scheduler) == (3000, 1e-4, "polynomial")
    assert (c.sampling.every_steps, c.sampling.steps, c.saving.backup_every_steps) == (500, 20, 500)
    assert (c.data.resolution, c.data.caption_dropout) == (1024, 0.1)
    concepts = [(Path(x.path).name, x.role, x.repeats, x.caption, x.resolution, x.crop_jitter) for x in c.data.concepts]
    assert concepts == [("subject", "train", 10, "instance", None, None),  # SimpleTuner's repeats 9: 10 passes
                        ("subject", "train", 10, "instance", 512, None),
                        ("regularisation", "regularisation", None, "per-image", None, True)]
    assert 'hub_model_id = "simpletuner-lora"' in done.stderr and "text-embeds" not in done.stderr


def test_import_refusals_are_one_line(cli, workspace: Path, tmp_path: Path) -> None:
    (tmp_path / "other.json").write_text('{"hello": 1}')
    (tmp_path / "broken.json").write_text('{"model_type": ')
    (tmp_path / "wan.json").write_text('{"model_family": "wan", "model_type": "lora"}')
    (tmp_path / "exists.toml").write_text("")
    for args, said in (
        (["import", str(tmp_path / "missing.toml")], "no such file"),
        (["import", str(tmp_path / "other.json")], "not a config tuitrain knows"),
        (["import", str(tmp_path / "broken.json")], "not valid JSON"),
        (["import", str(tmp_path / "wan.json")], "model_family: 'wan' is not a model tuitrain trains"),
        (["import", str(tmp_path / "other.json"), "--out", str(tmp_path / "exists.toml")], "already exists"),
    ):
        out = cli(*args)
        assert out.returncode == 2, args
        assert said in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
        assert "Traceback" not in out.stderr


def test_onetrainer_concepts_file_and_simpletuner_data_config_flag(cli, workspace: Path, tmp_path: Path) -> None:
    import json

    root = _tree(tmp_path, "onetrainer")
    config = json.loads((root / "sd15_lora.json").read_text())
    concepts = config.pop("concepts")
    config["concepts"] = None  # OneTrainer keeps them in concept_file_name then
    (root / "training_concepts").mkdir()
    (root / "training_concepts" / "concepts.json").write_text(json.dumps(concepts))
    (root / "split.json").write_text(json.dumps(config))
    out = cli("import", str(root / "split.json"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("[[data.concepts]]") == 2 and 'name = "faery"' in out.stdout

    st = _tree(tmp_path, "simpletuner")
    moved = tmp_path / "elsewhere.json"
    (st / "config" / "multidatabackend.json").rename(moved)
    missing = cli("import", str(st / "config" / "config.json"))
    assert missing.returncode == 0 and "data_backend_config" in missing.stderr and "cannot read it" in missing.stderr
    given = cli("import", str(st / "config" / "config.json"), "--data-config", str(moved))
    assert given.returncode == 0, given.stderr
    assert given.stdout.count("[[data.concepts]]") == 3
