"""`--set key=value`: typed by the schema, errors named like the file's."""

from __future__ import annotations

import pytest

from tuitrain.config import ConfigError, parse_config


def _cfg(*overrides: str, data: dict | None = None):
    return parse_config(data or {}, overrides=overrides)


def test_values_take_the_option_type() -> None:
    c = _cfg("training.learning_rate=2e-4", "lora.rank=8", "lora.alpha=4", "lora.use_dora=true",
             "model.base=123", "optimizer.name=prodigy", "training.max_steps=500")
    assert c.training.learning_rate == 2e-4 and isinstance(c.training.learning_rate, float)
    assert c.lora.rank == 8 and c.lora.alpha == 4.0 and c.lora.use_dora is True
    assert c.model.base == "123"
    assert c.optimizer.name == "prodigy" and c.training.max_steps == 500


@pytest.mark.parametrize("raw", ["yes", "on", "1", "TRUE"])
def test_bool_spellings(raw: str) -> None:
    assert _cfg(f"data.flip={raw}").data.flip is True


def test_unset_an_optional_value() -> None:
    c = _cfg("training.max_steps=none", data={"training": {"max_steps": 10}})
    assert c.training.max_steps is None


def test_list_items_by_index_and_append() -> None:
    c = _cfg("data.concepts[0].path=/a", "data.concepts[0].repeats=3", "data.concepts[1].path=/b")
    assert [(x.path, x.repeats) for x in c.data.concepts] == [("/a", 3), ("/b", None)]


def test_whole_list_as_inline_toml() -> None:
    c = _cfg('sampling.prompts=[{prompt = "a red fox", seed = 7}]')
    assert c.sampling.prompts[0].prompt == "a red fox" and c.sampling.prompts[0].seed == 7


def test_overrides_beat_the_file_and_the_preset() -> None:
    c = _cfg("lora.rank=4", data={"preset": "sdxl-lora", "lora": {"rank": 99}})
    assert c.lora.rank == 4 and c.data.resolution == 1024


@pytest.mark.parametrize(
    ("override", "line"),
    [
        ("training.learning_rate=fast", '--set: training.learning_rate: must be a number, got "fast"'),
        ("training.learning_rate=-1", "--set: training.learning_rate: must be > 0, got -1"),
        ("training.lr=1", "--set: training.lr: unknown key (did you mean training.learning_rate?)"),
        ("lora.rank", "--set: expected KEY=VALUE, got \"lora.rank\""),
        ("lora.rank.x=1", "--set: lora.rank.x: unknown key (did you mean lora.rank?)"),
        ("data.concepts[3].path=/x", "--set: data.concepts[3].path: index 3 is past the end of data.concepts (0 items; use 0 to add one)"),
        ("optimizer.name=rmsprop", "--set: optimizer.name: must be one of 'adamw', 'adamw8bit', 'lion8bit', 'prodigy', "
         "'prodigy_schedulefree', 'adamw_schedulefree', 'came', 'adafactor', 'sgd' or 'adamw_bf16', got \"rmsprop\""),
    ],
)
def test_bad_overrides(override: str, line: str) -> None:
    with pytest.raises(ConfigError) as err:
        _cfg(override)
    assert err.value.lines() == [line]


def test_bad_override_blamed_on_the_command_line_not_the_file(tmp_path) -> None:
    from tuitrain.config import load_config

    path = tmp_path / "c.toml"
    path.write_text("[lora]\nrank = 0\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, ["training.learning_rate=0"])
    assert err.value.lines() == [
        "--set: training.learning_rate: must be > 0, got 0",
        f"{path}: lora.rank: must be >= 1, got 0",
    ]


@pytest.mark.parametrize(("key", "hint"), [("training.lr", "training.learning_rate"),
                                           ("network_dim", "lora.rank"),
                                           ("training.max_train_steps", "training.max_steps")])
def test_names_from_other_trainers_get_a_hint(key: str, hint: str) -> None:
    with pytest.raises(ConfigError) as err:
        _cfg(f"{key}=1")
    assert err.value.lines() == [f"--set: {key}: unknown key (did you mean {hint}?)"]


@pytest.mark.parametrize(
    ("text", "override", "line"),
    [
        ('[sampling]\nprompts = ["a cat"]', "sampling.prompts[0].seed=1",
         '--set: sampling.prompts[0].seed: sampling.prompts[0] is a string ("a cat"), not a table'),
        ("[sampling]\nprompts = [[1]]", "sampling.prompts[0].seed=1",
         "--set: sampling.prompts[0].seed: sampling.prompts[0] is a list, not a table"),
        ("[data]\nconcepts = [3]", "data.concepts[0].path=/x",
         "--set: data.concepts[0].path: data.concepts[0] is a value (3), not a table"),
        ('[sampling]\nprompts = "a cat"', "sampling.prompts[0].seed=1",
         '--set: sampling.prompts[0].seed: sampling.prompts is a string ("a cat"), not a list'),
        ("training = 3", "training.seed=1", "--set: training.seed: training is a value (3), not a table"),
        ("", "data.concepts[" + "9" * 5000 + "].path=/x",
         '--set: "data.concepts[9999999999999999999999999999999...999999999].path" (5020 characters): '
         "a list index has at most 9 digits"),
    ],
)
def test_a_value_in_the_way_is_one_line_naming_the_key(
    text: str, override: str, line: str, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The file holds something else where the key leads (a string where a table is wanted): issue 14
    had `--set sampling.prompts[0].seed=1` over string prompts end in a TypeError."""
    from tuitrain.cli.main import main

    path = tmp_path / "c.toml"
    path.write_text(text, encoding="utf-8")
    assert main(["check", str(path), f"--set={override}"]) == 2
    assert capsys.readouterr().err.splitlines()[0] == line


def test_a_key_with_a_newline_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    """Not a key path, said on one line: the key is quoted with its newline escaped."""
    from tuitrain.cli.main import main

    path = tmp_path / "c.toml"
    path.write_text("", encoding="utf-8")
    assert main(["check", str(path), "--set=training.se\ned=1"]) == 2
    assert capsys.readouterr().err == '--set: "training.se\\ned": not a key path (like training.learning_rate)\n'


@pytest.mark.parametrize("key", ["model.base", "saving.name", "description", "data.concepts[0].path"])
def test_text_that_is_not_utf8_is_refused_naming_the_key(key: str) -> None:
    """Non-UTF-8 bytes in an argument reach Python as lone surrogates: a str that no TOML file can hold and
    that the trainer's path checks choked on (UnicodeEncodeError in check)."""
    with pytest.raises(ConfigError) as err:
        _cfg(f"{key}=caf\udce9")
    assert err.value.lines() == [f'--set: {key}: must be UTF-8 text (not bytes of another encoding), got "caf\\udce9"']
