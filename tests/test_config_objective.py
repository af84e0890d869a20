"""[objective], model.flavour and model.prediction = flow: defaults, and bad values as one line naming the key."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from tuitrain.cli.main import main
from tuitrain.config import ConfigError, parse_config
from tuitrain.config.options import iter_options
from tuitrain.config.schema import ModelSection
from tuitrain.families import FAMILIES


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return info.value.lines()


@pytest.fixture
def flow_sd15(monkeypatch: pytest.MonkeyPatch) -> None:
    """sd15 as if it trained with flow matching: no flow family is registered yet."""
    monkeypatch.setitem(FAMILIES, "sd15", dataclasses.replace(FAMILIES["sd15"], objective="flow"))


def test_configs_without_objective_load_with_the_defaults() -> None:
    config = parse_config({"model": {"family": "sdxl"}})
    o = config.objective
    assert (o.timestep_sampling, o.logit_mean, o.logit_std, o.mode_scale, o.sigmoid_scale) == (
        "logit_normal", 0.0, 1.0, 1.29, 1.0)
    assert (o.shift, o.auto_shift, o.loss_weighting, o.zero_terminal_snr) == (None, False, "none", False)
    assert (config.model.flavour, config.model.prediction) == ("", "auto")


def test_flow_options_are_tagged_for_the_form() -> None:
    tags = {o.path: o.objective for o in iter_options() if o.path.startswith("objective.")}
    for ddpm in ("zero_terminal_snr", "debiased_estimation", "min_timestep", "max_timestep"):
        assert tags.pop(f"objective.{ddpm}") == "ddpm"
    for both in ("loss_type", "huber_schedule", "huber_c", "multires_noise_iterations", "multires_noise_discount",
                 "input_perturbation"):
        assert tags.pop(f"objective.{both}") is None
    assert set(tags.values()) == {"flow"} and "objective.shift" in tags and "objective.max_sigma" in tags
    assert all(o.objective is None for o in iter_options() if not o.path.startswith("objective."))


@pytest.mark.parametrize(
    ("data", "line"),
    [
        ({"objective": {"timestep_sampling": "linear"}},
         "objective.timestep_sampling: must be one of 'uniform', 'logit_normal', 'mode', 'cosmap' or 'sigmoid', "
         'got "linear"'),
        ({"objective": {"logit_std": 0}}, "objective.logit_std: must be > 0, got 0"),
        ({"objective": {"logit_mean": -11.0}}, "objective.logit_mean: must be >= -10, got -11"),
        ({"objective": {"mode_scale": 2.0}}, "objective.mode_scale: must be <= 1.75, got 2"),
        ({"objective": {"sigmoid_scale": -1.0}}, "objective.sigmoid_scale: must be > 0, got -1"),
        ({"objective": {"shift": 0.0}}, "objective.shift: must be >= 0.1, got 0"),
        ({"objective": {"shift": 50.0}}, "objective.shift: must be <= 20, got 50"),
        ({"objective": {"loss_weighting": "snr"}},
         "objective.loss_weighting: must be one of 'none', 'sigma_sqrt' or 'cosmap', got \"snr\""),
        ({"objective": {"zero_terminal_snr": "yes"}}, 'objective.zero_terminal_snr: must be true or false, got "yes"'),
        ({"objective": {"auto_shift": True, "shift": 3.0}},
         "objective.shift: leave it unset with auto_shift = true (the shift then follows each image's size), got 3"),
        ({"objective": {"shfit": 3.0}}, "objective.shfit: unknown key (did you mean objective.shift?)"),
        ({"model": {"family": "sd2", "flavour": "768"}},
         'model.flavour: must be one of the sd2 flavours (768-v, 512-base) or empty (detect), got "768"'),
        ({"model": {"family": "sd15", "flavour": "512-base"}},
         'model.flavour: must be one of the sd15 flavours (base) or empty (detect), got "512-base"'),
        ({"model": {"family": "sdxl", "prediction": "flow"}},
         'model.prediction: sdxl trains with DDPM noise schedules: must be auto, epsilon or v_prediction, got "flow"'),
        ({"model": {"prediction": "epsilon"}, "objective": {"zero_terminal_snr": True}},
         "objective.zero_terminal_snr: needs model.prediction = v_prediction; with epsilon the last timestep is pure "
         "noise and teaches the model nothing"),
    ],
)
def test_bad_values_are_one_line_naming_the_key(data: dict[str, Any], line: str) -> None:
    assert problems(data) == [line]


def test_good_values() -> None:
    c = parse_config({"model": {"family": "sd2", "flavour": "512-base", "prediction": "v_prediction"},
                      "objective": {"zero_terminal_snr": True, "shift": 3.0, "timestep_sampling": "cosmap"}})
    assert (c.model.flavour, c.objective.shift, c.objective.timestep_sampling) == ("512-base", 3.0, "cosmap")
    # With auto the trainer knows the prediction only from the model: its objective refuses epsilon there.
    assert parse_config({"objective": {"zero_terminal_snr": True}}).objective.zero_terminal_snr
    assert parse_config({"objective": {"auto_shift": True}}).objective.auto_shift
    # Flow options on a DDPM family are ignored (the form hides them), as [lora] is by an embedding run.
    assert parse_config({"objective": {"loss_weighting": "cosmap"}}).objective.loss_weighting == "cosmap"


def test_a_flow_family_refuses_ddpm_predictions_and_min_snr(flow_sd15: None) -> None:
    assert parse_config({"model": {"prediction": "flow"}}).model.prediction == "flow"
    assert parse_config({}).model.prediction == "auto"
    for prediction in ("epsilon", "v_prediction"):
        assert problems({"model": {"prediction": prediction}}) == [
            f'model.prediction: sd15 trains with flow matching: must be auto or flow, got "{prediction}"'
        ]
    assert problems({"training": {"min_snr_gamma": 5}}) == [
        "training.min_snr_gamma: min-SNR weighting is for DDPM families; sd15 trains with flow matching "
        "(objective.loss_weighting weighs its samples), set it to 0, got 5"
    ]
    # zero_terminal_snr is DDPM's: ignored by a flow family, never refused there.
    assert parse_config({"objective": {"zero_terminal_snr": True}}).objective.zero_terminal_snr


def test_flavour_help_lists_every_familys_flavours() -> None:
    help_text = ModelSection.model_fields["flavour"].description or ""
    for name, info in FAMILIES.items():
        assert f"{name}: {', '.join(info.flavour_names)}" in help_text


@pytest.mark.parametrize(
    ("text", "start"),
    [
        ("[objective]\nmode_scale = 9\n", "objective.mode_scale: must be <= 1.75"),
        ("[model]\nfamily = 'sd2'\nflavour = 'nope'\n", "model.flavour: must be one of the sd2 flavours"),
        ("[model]\nprediction = 'flow'\n", "model.prediction: sd15 trains with DDPM noise schedules"),
    ],
)
def test_check_says_each_in_one_line(text: str, start: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.toml"
    config.write_text(text, encoding="utf-8")
    assert main(["check", str(config)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{config}: {start}"), lines


def test_set_reaches_the_new_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.toml"
    config.write_text("", encoding="utf-8")
    assert main(["check", str(config), "--set", "objective.timestep_sampling=bogus"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "objective.timestep_sampling: must be one of" in lines[0], lines
