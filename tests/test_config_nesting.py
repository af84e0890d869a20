"""TOML nested past reason (20,000 `[`, dotted keys thousands deep) or holding a number of
thousands of digits: one line naming the file, wherever tuitrain reads TOML (issue 14).

tomllib recursed into each `[` until RecursionError; dotted keys parse without recursing,
into tables that the next step (merging a preset, copying for `--set`, listing key
bindings) recursed into.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from tuitrain.cli.main import main
from tuitrain.config import Config, save_config
from tuitrain.tomlcompat import MAX_NESTING

DEEP_TEXTS = {
    "arrays": "x = " + "[" * 20_000,
    "closed arrays": "x = " + "[" * 20_000 + "]" * 20_000,
    "inline tables": "x = " + "{a = " * 20_000 + "1" + "}" * 20_000,
    "dotted key": "x" + ".y" * 2_000 + " = 1",
    "table header": "[" + ".".join(["t"] * 2_000) + "]\nv = 1",
    "array of tables": "[[" + ".".join(["t"] * 2_000) + "]]",
}
TOO_DEEP = f"nested too deeply (at most {MAX_NESTING} levels of tables and arrays)"


@pytest.mark.parametrize("form", list(DEEP_TEXTS))
def test_check_names_the_file_in_one_line(form: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "deep.toml"
    config.write_text(DEEP_TEXTS[form], encoding="utf-8")
    assert main(["check", str(config), "--set=training.seed=1"]) == 2
    assert capsys.readouterr().err == f"{config}: {TOO_DEEP}\n"


def test_as_deep_as_allowed_still_reads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The bound is on nesting, not on TOML: MAX_NESTING levels parse (and fail on the schema, naming the key)."""
    config = tmp_path / "ok.toml"
    config.write_text("wat = " + "[" * (MAX_NESTING - 1) + "]" * (MAX_NESTING - 1), encoding="utf-8")
    assert main(["check", str(config)]) == 2
    assert capsys.readouterr().err == f"{config}: wat: unknown key\n"


def test_a_number_of_thousands_of_digits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """int() refuses over 4,300 digits with a bare ValueError from inside tomllib."""
    config = tmp_path / "big.toml"
    config.write_text("[training]\nseed = 1" + "0" * 5000 + "\n", encoding="utf-8")
    assert main(["check", str(config)]) == 2
    assert capsys.readouterr().err == f"{config}: cannot read a value: a number of over 4,300 digits\n"


def test_deep_user_preset(isolated_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A config naming a broken user preset is refused naming the preset's file; `presets` still lists."""
    presets = isolated_env / "config" / "tuitrain" / "presets"
    presets.mkdir(parents=True)
    (presets / "deep.toml").write_text(DEEP_TEXTS["arrays"], encoding="utf-8")
    config = tmp_path / "c.toml"
    config.write_text('preset = "deep"\n', encoding="utf-8")
    assert main(["check", str(config)]) == 2
    assert capsys.readouterr().err == f"{presets / 'deep.toml'}: {TOO_DEEP}\n"
    assert main(["presets"]) == 0
    assert "deep" in capsys.readouterr().out


def test_deep_set_value(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A `--set` value is TOML too (for lists and tables)."""
    config = tmp_path / "c.toml"
    config.write_text("", encoding="utf-8")
    assert main(["check", str(config), "--set=sampling.prompts=" + "[" * 20_000]) == 2
    err = capsys.readouterr().err
    assert err.startswith('--set: sampling.prompts: must be a list ([[...]] tables), got "[[[[') and err.count("\n") == 1


def test_settings_file(tmp_path: Path) -> None:
    """A broken settings file never stops the app: it is a message naming the file, defaults kept."""
    from tuitrain.settings import load_settings, save_setting

    for text in (DEEP_TEXTS["arrays"], "[keys]\n" + "review." * 2_000 + 'next = "j"\n'):
        path = tmp_path / "settings.toml"
        path.write_text(text, encoding="utf-8")
        loaded = load_settings(path)
        assert loaded.settings.theme == "tuitrain-dark"
        assert len(loaded.problems) == 1 and loaded.problems[0].startswith(f"{path}: not valid TOML ({TOO_DEEP})")
        assert save_setting("theme", "x", path) == f"{path}: not saved, the file cannot be read ({TOO_DEEP})"


def test_theme_file(tmp_path: Path) -> None:
    from tuitrain.tui.themes import ThemeFileError, load_theme

    path = tmp_path / "deep.toml"
    for text in (DEEP_TEXTS["inline tables"], 'primary = "#ff0000"\nvariables.' + "a." * 2_000 + 'b = "x"\n'):
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ThemeFileError) as err:
            load_theme(path)
        assert str(err.value) == f"{path}: not valid TOML: {TOO_DEEP}"


def test_saving_over_a_deep_file_writes_it_afresh(tmp_path: Path) -> None:
    """Saving keeps the old file's comments by parsing it with tomlkit; tomlkit refuses nesting past 100
    levels itself (a ParseError, not a RecursionError), and the file is then written afresh."""
    from tuitrain.config import load_config

    path = tmp_path / "c.toml"
    path.write_text(DEEP_TEXTS["arrays"], encoding="utf-8")
    save_config(Config(), path)
    assert load_config(path) == Config()


def test_home_screen_and_form_values(tmp_path: Path) -> None:
    """The home screen's summary of a run's config and a value typed into the form are TOML too."""
    from tuitrain.tui.config_editor.extras import ValueProblem, parse_value
    from tuitrain.tui.home import config_summary

    path = tmp_path / "config.toml"
    path.write_text(DEEP_TEXTS["arrays"], encoding="utf-8")
    assert config_summary(SimpleNamespace(config=path)) == ("?", "config unreadable", "")  # type: ignore[arg-type]
    with pytest.raises(ValueProblem, match="nested too deeply"):
        parse_value("[" * 20_000)
