"""The schema: defaults, round trips, and that every option is declared properly."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic_core import PydanticUndefined

from tuitrain.config import Config, ConfigError, dump_config, load_config, parse_config, save_config
from tuitrain.config.fields import GROUPS
from tuitrain.config.io import parse_toml
from tuitrain.config.options import iter_options
from tuitrain.config.presets import list_presets


def test_defaults_are_valid_and_named_as_the_contract_says() -> None:
    c = Config()
    assert (c.model.family, c.data.resolution, c.training.method, c.training.epochs) == ("sd15", 512, "lora", 10)
    assert (c.training.batch_size, c.training.learning_rate, c.optimizer.name) == (1, 1e-4, "adamw")
    assert (c.lora.rank, c.lora.alpha, c.sampling.every_epochs, c.saving.every_epochs) == (16, 16.0, 1, 1)
    assert c.version == 1


def test_every_option_has_help_a_group_and_a_level() -> None:
    options = list(iter_options())
    assert len(options) > 60
    for opt in options:
        assert opt.help.strip(), opt.path
        assert opt.group in GROUPS, opt.path
        assert opt.level in ("essential", "advanced"), opt.path
    essential = {o.path for o in options if o.level == "essential"}
    for key in ("model.base", "data.concepts[].path", "lora.rank", "optimizer.name", "training.learning_rate",
                "training.epochs"):
        assert key in essential


def _non_default(opt: Any) -> Any:
    """A valid value different from the default, for every kind of option."""
    c = opt.constraints
    if opt.choices:
        return next(v for v in reversed(opt.choices) if v != opt.default)
    default = opt.default
    kind = opt.type_name
    if kind.startswith("boolean"):
        return not default
    if kind.startswith("integer"):
        low = c.get("ge", c.get("gt", 0) + 1)
        high = c.get("le", low + 1000)
        value = (default if isinstance(default, int) else low) + 64
        return max(low, min(high, value)) if value != default else low
    if kind.startswith("number"):
        low = c.get("ge", c.get("gt", 0.0))
        high = c.get("le", c.get("lt", low + 2.0))
        return low + (high - low) * 0.37
    if kind.startswith("string"):
        return "some value"
    raise AssertionError(opt.path)


def test_every_option_round_trips_through_toml(tmp_path) -> None:
    """Change every option at once, save, load: nothing lost, nothing changed."""
    data: dict[str, Any] = {"data": {"concepts": [{"path": "a"}, {"path": "b"}]}, "sampling": {"prompts": [{"prompt": "x"}]}}
    for opt in iter_options():
        if opt.path in ("version",) or opt.type_name.startswith("list"):
            continue
        value = _non_default(opt)
        if opt.path.startswith("data.concepts[]."):
            data["data"]["concepts"][1][opt.name] = value
        elif opt.path.startswith("sampling.prompts[]."):
            data["sampling"]["prompts"][0][opt.name] = value
        elif "." in opt.path:
            section, name = opt.path.split(".")
            data.setdefault(section, {})[name] = value
        else:
            data[opt.path] = value
    data["preset"] = ""  # a preset would be merged under the file
    data["data"]["resolution"] = 1024
    data["data"]["bucket_step"] = 64
    data["data"]["concepts"][1]["caption_extension"] = ".caption"
    data["data"]["concepts"][1]["instance_prompt"] = "photo of sks"
    # repeats and samples_per_epoch exclude each other: the second balances the first concept
    data["data"]["concepts"][0]["samples_per_epoch"] = data["data"]["concepts"][1].pop("samples_per_epoch")
    data["sampling"]["prompts"][0].update(width=768, height=512)
    data["training"]["device"] = "cuda:1"
    data["lora"]["use_dora"] = False  # DoRA is LoRA-only, and lora.type is changed too
    data["embedding"]["token"] = "<some-token>"  # one word
    data["lora"]["dropout"] = 0.0  # LoRA-only, like DoRA
    data["finetune"]["single_file"] = True  # something must be saved
    data["data"]["mask_suffix"] = "_mask.png"  # a name after the image's stem, with an image extension
    data["model"]["family"] = "sdxl"  # a DDPM family: the sampler and min-SNR options apply
    data["model"]["text_encoder"] = data["model"]["text_encoder_2"] = ""  # files only FLUX.1 loads (refused for sdxl)
    data["training"]["method"] = "embedding"  # quantized frozen weights cannot be fine-tuned
    data["model"]["prediction"] = "v_prediction"  # sdxl trains with DDPM, not flow; v allows zero_terminal_snr
    data["model"]["flavour"] = "base"  # one of sdxl's flavours
    del data["objective"]["shift"]  # a static shift and auto_shift exclude each other
    del data["training"]["lr_warmup_fraction"]  # warm-up in steps or as a fraction, not both
    for key in ("text_encoder_max_steps", "text_encoder_max_epochs"):  # an embedding run trains no text encoder
        del data["training"][key]
    data["objective"]["max_sigma"] = 0.9  # above min_sigma
    data["training"]["device"] = "cuda"  # several processes take their GPUs from distributed.gpus
    data["distributed"].update(processes=2, gpus="0,1")
    data["distributed"]["strategy"] = "ddp"  # fsdp shards fine-tunes only (this run is an embedding: see above)
    data["model"]["quantize"] = "int8"  # fp8 / int4 (optimum-quanto) do not compile
    del data["lora"]["targets"]  # sdxl has no named target sets
    del data["data"]["concepts"][1]["references"]  # reference images are for editing flavours (FLUX.1 Kontext)
    del data["sampling"]["prompts"][0]["reference"]
    if "class_images" in data["data"]["concepts"][1]:
        data["data"]["concepts"][1]["role"] = "regularisation"  # only regularisation concepts draw class images
    config = parse_config(data)
    path = tmp_path / "c.toml"
    save_config(config, path)
    again = load_config(path)
    assert again == config
    assert dump_config(again) == dump_config(config)
    for opt in iter_options():  # the changed values really are in the file
        if "." in opt.path and "[]" not in opt.path and not opt.type_name.startswith("list"):
            section, name = opt.path.split(".")
            assert getattr(getattr(again, section), name) == getattr(getattr(config, section), name)
    assert again.data.concepts[1].instance_prompt == "photo of sks"


@pytest.mark.parametrize("preset", [p.name for p in list_presets()])
def test_presets_round_trip(preset: str, tmp_path) -> None:
    config = parse_config({"preset": preset})
    save_config(config, tmp_path / "c.toml")
    assert load_config(tmp_path / "c.toml") == config


def test_unset_optionals_stay_unset() -> None:
    config = parse_config({"data": {"concepts": [{"path": "x"}]}})
    text = dump_config(config)
    assert "repeats" not in text and "max_steps" not in text
    assert parse_config(parse_toml(text)).data.concepts[0].repeats is None


def test_float_options_accept_toml_integers() -> None:
    assert parse_config({"lora": {"alpha": 8}}).lora.alpha == 8.0
    assert parse_config({"training": {"learning_rate": 1}}).training.learning_rate == 1.0


def test_strings_are_not_coerced_to_numbers() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"training": {"batch_size": "4"}})
    assert err.value.lines() == ['training.batch_size: must be an integer, got "4"']


def test_newer_version_is_refused_with_advice() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"version": 99})
    assert "newer than this tuitrain supports" in err.value.lines()[0]
    assert err.value.lines()[0].startswith("version:")


def test_default_factory_values_are_independent() -> None:
    a, b = Config(), Config()
    a.data.concepts.append(parse_config({"data": {"concepts": [{"path": "p"}]}}).data.concepts[0])
    assert b.data.concepts == []


def test_required_concept_path_is_reported() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"data": {"concepts": [{"repeats": 2}]}})
    assert err.value.lines() == ["data.concepts[0].path: required, but missing"]


def test_option_defaults_are_known() -> None:
    for opt in iter_options():
        if opt.path != "data.concepts[].path" and opt.path != "sampling.prompts[].prompt":
            assert opt.default is not PydanticUndefined, opt.path
