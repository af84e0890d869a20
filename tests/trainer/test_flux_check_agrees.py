"""`tuitrain check` refuses what `tuitrain train` refuses, in the same line, for FLUX.1's component files and DoRA;
and a FLUX.1-schnell file loaded with the shipped (FLUX.1-dev) configs samples with schnell's scheduler.

- model.text_encoder / text_encoder_2 beside a diffusers folder or a hub id are checked from their headers, as
  they are beside a transformer file (check used to look at them only then, and passed runs train refused).
- lora.use_dora: the families whose LoRA files have no DoRA form (SD3, PixArt, Stable Cascade, Würstchen) and
  FLUX.1's kohya layout / CLIP-L DoRA are blocked by check in the trainer's own words (check used to warn only,
  with FLUX.1's text for every "peft" family).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from tests.trainer.conftest import make_dataset
from tests.trainer.harness import events, new_run, train_cli
from tests.trainer.test_flux import TINY_SETS
from tests.trainer.test_flux_component_files import comfy  # noqa: F401 - the tiny model and its ComfyUI files
from tuitrain.config import load_config, parse_config


def _config(tmp_path: Path, data: Path, **sections: dict[str, Any]) -> Path:
    """A config file for a tiny FLUX.1 LoRA run on `data` with `sections` over it."""
    table: dict[str, Any] = {"model": {"family": "flux"}, "data": {"resolution": 64, "concepts": [{"path": str(data)}]},
                             "training": {"method": "lora", "epochs": 1}, "sampling": {"every_epochs": 0},
                             "saving": {"every_epochs": 0}}
    for key, values in sections.items():
        table[key] = {**table.get(key, {}), **values}
    path = tmp_path / "flux.toml"
    path.write_text(tomli_w.dumps(table))
    parse_config(table)  # a valid config: what follows is about whether it can train
    return path


def _refused_alike(cli: Any, config: Path, line: str) -> None:
    """check exits 1 printing `line` as its reason, and train refuses with the same line before any run exists."""
    check = cli("check", str(config))
    assert check.returncode == 1, check.stdout + check.stderr
    assert f"cannot train: {line}" in check.stdout.splitlines(), check.stdout
    assert "  base: " not in check.stdout  # no description of a base the run cannot use
    trained = cli("train", str(config))
    assert trained.returncode == 1, trained.stdout + trained.stderr
    assert f"cannot train: {line}" in trained.stderr.splitlines(), trained.stderr
    assert "Training" not in trained.stdout


def test_a_missing_t5_file_beside_a_diffusers_folder_stops_check_as_it_stops_train(
        cli: Any, comfy: dict[str, Path], tmp_path: Path) -> None:  # noqa: F811
    data = make_dataset(tmp_path / "data", count=2)
    missing = tmp_path / "t5xxl_fp16.safetensors"
    config = _config(tmp_path, data, model={"base": str(comfy["model"]), "text_encoder_2": str(missing)})
    _refused_alike(cli, config, f"model.text_encoder_2: file or folder not found: '{missing}'")


def test_the_transformer_given_as_the_t5_file_beside_a_diffusers_folder_is_refused_by_check(
        cli: Any, comfy: dict[str, Path], tmp_path: Path) -> None:  # noqa: F811
    data = make_dataset(tmp_path / "data", count=2)
    config = _config(tmp_path, data, model={"base": str(comfy["model"]), "text_encoder_2": str(comfy["transformer"])})
    check = cli("check", str(config))
    assert check.returncode == 1, check.stdout
    (line,) = [line for line in check.stdout.splitlines() if line.startswith("cannot train: model.text_encoder_2")]
    assert line.startswith(f"cannot train: model.text_encoder_2: '{comfy['transformer']}' is not a FLUX.1 T5-XXL "
                           "encoder file: its first keys are"), line
    assert line.endswith("give t5xxl_fp16.safetensors (transformers names)"), line
    trained = cli("train", str(config))
    assert trained.returncode == 1 and line in trained.stderr.splitlines(), trained.stderr


def test_a_text_encoder_file_beside_a_hub_id_is_refused_by_check_in_trains_line(
        cli: Any, comfy: dict[str, Path], tmp_path: Path) -> None:  # noqa: F811
    data = make_dataset(tmp_path / "data", count=2)
    config = _config(tmp_path, data, model={"base": "black-forest-labs/FLUX.1-dev", "text_encoder": str(comfy["clip"])})
    line = ("model.text_encoder: a text encoder file goes with a local model.base (a transformer file, an all-in-one "
            "checkpoint or a diffusers folder), not a hub id")
    _refused_alike(cli, config, line)

    from tuitrain.trainer.loading import load_pipeline
    from tuitrain.trainer.loading.errors import ModelLoadError

    with pytest.raises(ModelLoadError) as raised:  # the loader's own refusal, word for word
        load_pipeline(load_config(config).model, "flux", config_dir=tmp_path)
    assert str(raised.value) == line


def test_check_says_where_a_diffusers_folders_t5_comes_from(cli: Any, comfy: dict[str, Path],  # noqa: F811
                                                             tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data", count=2)
    config = _config(tmp_path, data, model={"base": str(comfy["model"]), "text_encoder_2": str(comfy["t5_fp8"])})
    check = cli("check", str(config), "--json")
    assert check.returncode == 0, check.stdout + check.stderr
    assert json.loads(check.stdout)["base"] == ("Flux.1 diffusers folder (FluxPipeline), "
                                                "T5 from t5xxl_fp8_e4m3fn_scaled.safetensors")


@pytest.mark.parametrize("family", ["sd3", "pixart", "cascade", "wuerstchen"])
def test_dora_for_a_family_without_a_dora_file_is_blocked_by_check(family: str, tmp_path: Path) -> None:
    """The trainer's LoraMethod refusal, from the torch-free family files; no FLUX.1 advice beside it."""
    from tuitrain.cli.cmd_check import run_verdict

    data = make_dataset(tmp_path / "data", count=2)
    config = parse_config({"model": {"family": family, "base": str(tmp_path / "none")},
                           "data": {"resolution": 64, "concepts": [{"path": str(data)}]},
                           "training": {"method": "lora"}, "lora": {"use_dora": True}})
    verdict = run_verdict(config, tmp_path)
    assert not verdict.can_train
    assert (f"lora.use_dora: {family} LoRA files are written in diffusers' naming with the scale folded in, which "
            "has no DoRA form in tuitrain yet; turn use_dora off") in verdict.refusals()
    assert not [w for w in verdict.warnings if w.startswith("lora.use_dora")], verdict.warnings


@pytest.mark.parametrize(("sets", "message"), [
    (("lora.train_text_encoder=true",),
     "lora.use_dora: diffusers does not load DoRA magnitudes into CLIP-L, so the file would not apply as trained; "
     "set lora.train_text_encoder = false or use_dora = false"),
    (("flux.lora_layout=kohya",),
     "lora.use_dora: kohya's FLUX.1 layout (flux.lora_layout = 'kohya') is written without DoRA here; "
     "set flux.lora_layout = 'diffusers' or use_dora = false"),
])
def test_flux_dora_that_train_refuses_is_blocked_by_check(sets: tuple[str, ...], message: str, cli: Any,
                                                          comfy: dict[str, Path], tmp_path: Path) -> None:  # noqa: F811
    """check used to warn only; now check and train both stop with the adapter's line, before a run starts."""
    data = make_dataset(tmp_path / "data", count=2)
    run = new_run("d", comfy["model"], data, *TINY_SETS, "lora.use_dora=true", *sets, preset="flux-dev-lora")
    check = cli("check", run.name)
    assert check.returncode == 1, check.stdout
    assert f"cannot train: {message}" in check.stdout.splitlines(), check.stdout
    assert "warning: lora.use_dora" not in check.stdout
    trained = train_cli(run)
    assert trained.returncode == 1 and f"cannot train: {message}" in trained.stderr.splitlines(), trained.stderr
    assert not events(run)  # refused before the trainer started


@pytest.fixture(scope="module")
def fake_shipped(comfy: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    """The tiny model's configs with the shipped FLUX.1-dev scheduler config: what the shipped folder is, at the
    tiny widths (the real one describes 12B parameters)."""
    from tuitrain.trainer.loading import shipped_config_dir

    folder = tmp_path_factory.mktemp("shipped") / "flux"
    shutil.copytree(comfy["arch"], folder)
    shutil.copyfile(shipped_config_dir("flux") / "scheduler" / "scheduler_config.json",
                    folder / "scheduler" / "scheduler_config.json")
    return folder


def _bfl_file(model: Path, path: Path) -> Path:
    from diffusers import FluxTransformer2DModel
    from safetensors.torch import save_file

    from tuitrain.trainer.families.flux.layout import to_bfl

    transformer = FluxTransformer2DModel.from_pretrained(str(model), subfolder="transformer", local_files_only=True)
    save_file({k: v.contiguous() for k, v in to_bfl(transformer.state_dict()).items()}, path)
    return path


@pytest.mark.parametrize("flavour", ["schnell", "dev"])
def test_a_schnell_file_with_the_shipped_configs_gets_schnells_scheduler(
        flavour: str, comfy: dict[str, Path], fake_shipped: Path, tmp_path: Path,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    """model.config empty: the shipped configs are FLUX.1-dev's (dynamic shifting); a file without a guidance
    embedding (schnell) samples with FLUX.1-schnell's scheduler (shift 1, no dynamic shifting), dev with dev's."""
    from tuitrain.trainer.families import get_adapter
    from tuitrain.trainer.loading import config_folders, load_pipeline, pipeline
    from tuitrain.trainer.tiny import save_tiny_model

    for module in (config_folders, pipeline):  # where the transformer file's and model.vae's configs come from
        monkeypatch.setattr(module, "shipped_config_dir", lambda family, variant="": fake_shipped)
    model = save_tiny_model("flux", tmp_path / "model", flavour=flavour)
    base = _bfl_file(model, tmp_path / f"flux1-{flavour}.safetensors")
    settings = parse_config({"model": {"family": "flux", "base": str(base), "text_encoder": str(comfy["clip"]),
                                       "text_encoder_2": str(comfy["t5"]), "vae": str(comfy["ae"])}}).model
    pipe = load_pipeline(settings, "flux", config_dir=tmp_path)
    assert get_adapter("flux").detect_flavour(pipe.transformer) == flavour
    scheduler = pipe.scheduler.config
    if flavour == "schnell":
        assert (scheduler.shift, scheduler.use_dynamic_shifting) == (1.0, False)
    else:
        assert (scheduler.shift, scheduler.use_dynamic_shifting) == (3.0, True)
    assert (scheduler.base_shift, scheduler.max_shift, scheduler.num_train_timesteps) == (0.5, 1.15, 1000)

    # A model.config folder is the model's own: its scheduler is kept, whatever the flavour.
    settings = parse_config({"model": {"family": "flux", "base": str(base), "config": str(fake_shipped),
                                       "text_encoder": str(comfy["clip"]), "text_encoder_2": str(comfy["t5"]),
                                       "vae": str(comfy["ae"])}}).model
    own = load_pipeline(settings, "flux", config_dir=tmp_path).scheduler.config
    assert (own.shift, own.use_dynamic_shifting) == (3.0, True)
