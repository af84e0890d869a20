"""The command line as a user runs it: real processes, exit codes, files on disk."""

from __future__ import annotations

from pathlib import Path

from tuitrain.config import load_config


def test_help_lists_every_fixed_command(cli) -> None:
    out = cli("--help")
    assert out.returncode == 0
    for command in ("new", "check", "train", "attach", "cull", "config", "presets", "demo"):
        assert command in out.stdout


def test_presets_lists_each_with_description(cli) -> None:
    out = cli("presets")
    assert out.returncode == 0
    shipped = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "presets").glob("*.toml"))
    assert len(shipped) >= 6
    names = [line.split()[0] for line in out.stdout.splitlines()[: len(shipped)]]
    assert names == shipped
    assert "Prodigy" in out.stdout


def fake_base(folder: Path) -> Path:
    """What check accepts as an SD base without loading it: a diffusers folder's model_index.json."""
    model = folder / "model"
    model.mkdir(exist_ok=True)
    (model / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline"}')
    return model


def test_new_makes_a_run_whose_config_validates(cli, workspace: Path, tmp_path: Path) -> None:
    data = tmp_path / "faery"
    data.mkdir()
    from PIL import Image

    Image.new("RGB", (512, 512), "red").save(data / "a.png")
    (data / "a.txt").write_text("a red faery")
    model = fake_base(tmp_path)
    out = cli("new", "demo1", "--preset", "sd15-lora", "--data", str(data), "--base", str(model),
              "--set", "lora.rank=8")
    assert out.returncode == 0, out.stderr
    run = workspace / "demo1"
    for sub in ("samples", "checkpoints", "output"):
        assert (run / sub).is_dir()
    config = load_config(run / "config.toml")
    assert config.preset == "sd15-lora" and config.lora.rank == 8
    assert config.data.concepts[0].path == str(data.resolve())
    assert config.model.base == str(model.resolve())
    check = cli("check", "demo1")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "valid config" in check.stdout and "CAN TRAIN" in check.stdout


def test_check_reports_what_the_trainer_will_see(cli, tmp_path: Path) -> None:
    import json

    from PIL import Image

    folder = tmp_path / "data" / "5_fox"
    folder.mkdir(parents=True)
    Image.new("RGB", (800, 600), "red").save(folder / "wide.jpg")
    (folder / "broken.png").write_text("not an image")
    out = cli("check", "--data", str(tmp_path / "data"), "--batch-size", "2", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["can_train"] is True
    text = cli("check", "--data", str(tmp_path / "data"), "--batch-size", "2").stdout
    assert "5_fox/broken.png" in text and "576x448" in text
    empty = tmp_path / "empty"
    empty.mkdir()
    none = cli("check", "--data", str(empty))
    assert none.returncode == 1 and "CANNOT TRAIN" in none.stdout


def test_workspace_flag_beats_the_environment(cli, tmp_path: Path) -> None:
    out = cli("--workspace", str(tmp_path / "ws"), "new", "r1", "--preset", "sdxl-lora")
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "ws" / "r1" / "config.toml").is_file()
    assert "r1" in cli("--workspace", str(tmp_path / "ws"), "runs").stdout


def test_new_refuses_to_overwrite_and_bad_names(cli, workspace: Path) -> None:
    assert cli("new", "r", "--preset", "sd15-lora").returncode == 0
    before = (workspace / "r" / "config.toml").read_bytes()
    again = cli("new", "r", "--preset", "sdxl-lora")
    assert again.returncode == 2 and "already exists" in again.stderr
    assert (workspace / "r" / "config.toml").read_bytes() == before
    bad = cli("new", "../escape", "--preset", "sd15-lora")
    assert bad.returncode == 2 and "not a usable run name" in bad.stderr
    missing = cli("new", "r2", "--data", "/nonexistent/folder")
    assert missing.returncode == 2 and "--data /nonexistent/folder: no such folder" in missing.stderr
    assert not (workspace / "r2").exists()


def test_check_prints_one_line_per_mistake_and_no_traceback(cli, tmp_path: Path) -> None:
    cases = {
        "type.toml": ("[training]\nbatch_size = \"four\"\n", 'training.batch_size: must be an integer, got "four"'),
        "range.toml": ("[training]\nlearning_rate = -1\n", "training.learning_rate: must be > 0, got -1"),
        "unknown.toml": ("[lora]\nrnak = 8\n", "lora.rnak: unknown key (did you mean lora.rank?)"),
        "syntax.toml": ("[lora]\nrank = = 8\n", ":2:8: TOML syntax error: Invalid value"),
    }
    for name, (text, expected) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        out = cli("check", str(path))
        assert out.returncode == 2, (name, out.stdout, out.stderr)
        lines = out.stderr.strip().splitlines()
        assert lines == [f"{path}{expected}" if expected.startswith(":") else f"{path}: {expected}"], lines
        assert "Traceback" not in out.stderr + out.stdout


def test_check_all_mistakes_of_one_file(cli, tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[training]\nbatch_size = "four"\nlearning_rate = -1\n[lora]\nrnak = 8\n')
    out = cli("check", str(path))
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 3


def test_check_exit_1_when_valid_but_cannot_train(cli, tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[model]\nbase = "/no/such/model.safetensors"\n')
    out = cli("check", str(path))
    assert out.returncode == 1
    assert "model.base: file or folder not found: '/no/such/model.safetensors'" in out.stdout
    assert "data.concepts: no image folder configured" in out.stdout


def test_check_unknown_run_names_the_workspace(cli, workspace: Path) -> None:
    cli("new", "alpha", "--preset", "sd15-lora")
    out = cli("check", "alpah")
    assert out.returncode == 2
    assert "did you mean alpha?" in out.stderr and str(workspace) in out.stderr


def test_check_with_overrides(cli, workspace: Path) -> None:
    cli("new", "r", "--preset", "sd15-lora")
    out = cli("check", "r", "--set", "lora.rank=-3")
    assert out.returncode == 2
    assert out.stderr.strip() == "--set: lora.rank: must be >= 1, got -3"


def test_every_command_is_built_and_a_bad_run_is_named(cli, workspace: Path) -> None:
    from tuitrain.cli.main import COMMANDS

    assert "cmd_pending" not in COMMANDS.values()
    for command in ("train", "attach", "config"):
        out = cli(command, "no-such-run")
        assert out.returncode == 2, (command, out.stderr)
        assert "no-such-run" in out.stderr and "Traceback" not in out.stderr


def test_user_presets_are_listed_and_shadow_builtins(cli, isolated_env: Path) -> None:
    folder = isolated_env / "config" / "tuitrain" / "presets"
    folder.mkdir(parents=True)
    (folder / "mine.toml").write_text('description = "my style"\n[lora]\nrank = 4\n')
    out = cli("presets")
    assert "mine" in out.stdout and "my style (user)" in out.stdout
    assert cli("new", "r", "--preset", "mine").returncode == 0


def test_check_refuses_an_embedding_whose_token_no_caption_mentions(cli, tmp_path: Path) -> None:
    from PIL import Image

    data = tmp_path / "cat"
    data.mkdir()
    for i in range(2):
        Image.new("RGB", (64, 64), "grey").save(data / f"{i}.png")
        (data / f"{i}.txt").write_text("a photo of a cat")
    config = tmp_path / "ti.toml"
    config.write_text(
        f'[model]\nbase = "{fake_base(tmp_path)}"\n[training]\nmethod = "embedding"\n[embedding]\ntoken = "<mycat>"\n'
        f'[data]\nresolution = 64\n[[data.concepts]]\npath = "{data}"\n'
    )
    out = cli("check", str(config))
    assert out.returncode == 1
    assert "embedding.token: no caption contains '<mycat>'" in out.stdout
    assert "token <mycat> x 4 vectors" in out.stdout
    (data / "1.txt").write_text("a photo of <mycat>, sitting")
    out = cli("check", str(config))
    assert out.returncode == 0, out.stdout
    assert "embedding.token" not in out.stdout


def test_check_counts_the_masks_masked_loss_will_use(cli, tmp_path: Path) -> None:
    import json

    from PIL import Image

    data = tmp_path / "shots"
    data.mkdir()
    for i in range(3):
        Image.new("RGB", (64, 64), "grey").save(data / f"{i}.png")
        (data / f"{i}.txt").write_text("a shot")
    config = tmp_path / "m.toml"
    config.write_text(f'[model]\nbase = "{fake_base(tmp_path)}"\n[training]\nmasked_loss = true\n'
                      f'[data]\nresolution = 64\n[[data.concepts]]\npath = "{data}"\n')
    out = cli("check", str(config))
    assert "training.masked_loss: no image has a mask file (<image stem>-masklabel.png)" in out.stdout
    Image.new("L", (64, 64), 255).save(data / "1-masklabel.png")
    out = cli("check", str(config))
    assert out.returncode == 0, out.stdout
    assert "masks: 1 of 3 images have a mask file" in out.stdout  # the mask itself is no training image
    report = json.loads(cli("check", str(config), "--json").stdout)
    assert report["masks"].startswith("masks: 1 of 3")
    Image.new("L", (32, 64), 255).save(data / "2-masklabel.png")  # another shape: the trainer would stop
    out = cli("check", str(config))
    assert out.returncode == 1
    assert "cannot train: training.masked_loss: mask file" in out.stdout and "2-masklabel.png is 32x64" in out.stdout
