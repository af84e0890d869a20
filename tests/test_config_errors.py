"""Every user mistake in a config file: one clear line, the key and the value, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuitrain.config import ConfigError, load_config, parse_config
from tuitrain.config.io import parse_toml


def _errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_config(parse_toml(text, "c.toml"), "c.toml")
    return err.value.lines()


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("[training]\nlearning_rate = -1", "c.toml: training.learning_rate: must be > 0, got -1"),
        ("[training]\nbatch_size = 0", "c.toml: training.batch_size: must be >= 1, got 0"),
        ("[training]\nbatch_size = 2.5", "c.toml: training.batch_size: must be an integer, got 2.5"),
        ("[lora]\nrank = \"sixteen\"", 'c.toml: lora.rank: must be an integer, got "sixteen"'),
        ("[lora]\nuse_dora = \"yes\"", 'c.toml: lora.use_dora: must be true or false, got "yes"'),
        ("[lora]\ndropout = 1.0", "c.toml: lora.dropout: must be < 1, got 1"),
        ("[model]\nfamily = \"sd3.5\"",
         "c.toml: model.family: must be one of 'sd15', 'sd2', 'sdxl', 'flux', 'sd3', 'pixart', 'cascade' or 'wuerstchen', got \"sd3.5\""),
        ("[data]\nresolution = 500", "c.toml: data.resolution: must be a multiple of 8 (e.g. 512), got 500"),
        ("[data]\nresolution = 520", "c.toml: data.resolution: must be a multiple of data.bucket_step (64), got 520"),
        ("[training]\nlearnig_rate = 1e-4", "c.toml: training.learnig_rate: unknown key (did you mean training.learning_rate?)"),
        ("[training]\nrank = 8", "c.toml: training.rank: unknown key (did you mean lora.rank?)"),
        ("[trainig]\nepochs = 3", "c.toml: trainig: unknown key (did you mean training?)"),
        ("[data]\nconcepts = [{pth = \"x\", path = \"y\"}]",
         "c.toml: data.concepts[0].pth: unknown key (did you mean data.concepts[0].path?)"),
        ("[[data.concepts]]\npath = \"x\"\ncaption = \"instance\"",
         "c.toml: data.concepts[0].instance_prompt: required when caption = 'instance'"),
        ("[training]\ndevice = \"gpu\"", "c.toml: training.device: must be auto, cpu, cuda, cuda:N or mps, got \"gpu\""),
        ("[lora]\ntrain_attention = false",
         "c.toml: lora.train_attention: no layer would train (train_attention, train_ff, train_conv and "
         "train_text_encoder are all false)"),
        ("[[sampling.prompts]]\nprompt = \"a\"\nwidth = 500", "c.toml: sampling.prompts[0].width: must be a multiple of 8, got 500"),
        ("training = 3", "c.toml: training: must be a table, got 3"),
        ("version = \"one\"", "c.toml: version: must be a positive integer, got \"one\""),
        ("preset = \"sdxl-lroa\"", "c.toml: preset: unknown preset \"sdxl-lroa\" (did you mean sdxl-lora?)"),
        ("wat = 1", "c.toml: wat: unknown key"),
    ],
)
def test_one_line_per_mistake(text: str, line: str) -> None:
    assert _errors(text) == [line]


def test_all_mistakes_reported_at_once() -> None:
    """In schema order, one line each."""
    lines = _errors("[training]\nlearning_rate = -1\nbatch_size = \"x\"\nepocs = 2\n[lora]\nrank = 0\n")
    assert lines == [
        'c.toml: training.batch_size: must be an integer, got "x"',
        "c.toml: training.learning_rate: must be > 0, got -1",
        "c.toml: training.epocs: unknown key (did you mean training.epochs?)",
        "c.toml: lora.rank: must be >= 1, got 0",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[training]\nepochs = 3\nepochs 4\n", "c.toml:3:8: TOML syntax error: Expected '=' after a key in a key/value pair"),
        ("[training\n", "c.toml:1:10: TOML syntax error: Expected ']' at the end of a table declaration"),
        ("a = \"unterminated\n", "c.toml:1:18: TOML syntax error: Illegal character '\\n'"),
        ("[lora]\nrank = 1\n[lora]\n", "c.toml:3:6: TOML syntax error: Cannot declare ('lora',) twice"),
    ],
)
def test_toml_syntax_error_gives_file_line_and_column(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.lines() == [expected.replace("c.toml", str(path))]


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="is a folder"):
        load_config(tmp_path)
    bad = tmp_path / "latin1.toml"
    bad.write_bytes("description = 'caf\xe9'".encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(bad)


LONG = "x" * 100_000


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ('[training]\ndevice = "gpu\\n0"', 'c.toml: training.device: must be auto, cpu, cuda, cuda:N or mps, got "gpu\\n0"'),
        ('[lora]\nrank = "1\\n2"', 'c.toml: lora.rank: must be an integer, got "1\\n2"'),
        ('[model]\nbase = "a\\u0000b"', 'c.toml: model.base: must not contain a NUL character, got "a\\x00b"'),
        ('[training]\ndevice = "\\u001b[2Jgpu"', 'c.toml: training.device: must be auto, cpu, cuda, cuda:N or mps, '
                                                  'got "\\x1b[2Jgpu"'),
        (f'[model]\nfamily = "{LONG}"', "c.toml: model.family: must be one of 'sd15', 'sd2', 'sdxl', 'flux', 'sd3', 'pixart', 'cascade' or 'wuerstchen', got "
                                        f'"{"x" * 45}...{"x" * 15}" (100000 characters)'),
        (f'[saving]\nname = "{LONG}"', "c.toml: saving.name: is too long: 100000 bytes (UTF-8), at most 150, got "
                                       f'"{"x" * 45}...{"x" * 15}" (100000 characters)'),
        (f'preset = "{LONG}"', f'c.toml: preset: unknown preset "{"x" * 45}...{"x" * 15}" (100000 characters) '
                               "(tuitrain presets lists them)"),
        ('"a\\nb" = 1', 'c.toml: "a\\nb": unknown key'),
        ('" " = 1', 'c.toml: " ": unknown key'),
        (f'"{LONG}" = 1', f'c.toml: "{"x" * 45}...{"x" * 15}" (100000 characters): unknown key'),
        ('version = "1\\n"', 'c.toml: version: must be a positive integer, got "1\\n"'),
        ("version = 1" + "0" * 4000, "c.toml: version: this file is format 10000000000000000000... (4001 digits), "
                                     "newer than this tuitrain supports (1); upgrade tuitrain"),
        ("[training]\nseed = 1" + "0" * 200, "c.toml: training.seed: must be <= 9223372036854775807, got "
                                             "10000000000000000000... (201 digits)"),
    ],
)
def test_values_and_keys_are_quoted_on_one_line_and_cut(text: str, line: str) -> None:
    """Issue 14: a newline in a value split one error over two lines; 100 kB values were echoed whole."""
    assert _errors(text) == [line]


def test_file_names_are_one_line_too(tmp_path: Path) -> None:
    folder = tmp_path / "odd\nname"
    folder.mkdir()
    path = folder / "c.toml"
    path.write_text("[lora]\nrank = 0\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    shown = str(path).replace("\n", "\\n")
    assert err.value.lines() == [f"{shown}: lora.rank: must be >= 1, got 0"]


@pytest.mark.parametrize(
    ("override", "line"),
    [
        (LONG, f'--set: expected KEY=VALUE, got "{"x" * 45}...{"x" * 15}" (100000 characters)'),
        ("training.device=gpu\n0", '--set: training.device: must be auto, cpu, cuda, cuda:N or mps, got "gpu\\n0"'),
        (f"training.learning_rate={LONG}", '--set: training.learning_rate: must be a number, got '
                                           f'"{"x" * 45}...{"x" * 15}" (100000 characters)'),
        (f"lora.{LONG}=1", f'--set: "lora.{"x" * 40}...{"x" * 15}" (100005 characters): unknown key'),
    ],
)
def test_set_values_are_quoted_on_one_line_and_cut(override: str, line: str, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from tuitrain.cli.main import main

    path = tmp_path / "c.toml"
    path.write_text("")
    assert main(["check", str(path), f"--set={override}"]) == 2
    assert capsys.readouterr().err == line + "\n"


def test_a_config_file_over_16_mib_is_one_line_not_read_whole(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tuitrain.config import ConfigError, load_config

    path = tmp_path / "huge.toml"
    with open(path, "wb") as handle:
        handle.write(b"# " + b"x" * (17 * 2**20) + b"\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.lines() == [f"{path}: over 16 MiB: not a tuitrain config"]
