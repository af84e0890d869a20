"""saving.name is a plain file name: a path ('../../x', '/abs'), a NUL or a hidden name is a config
error naming the key, from `tuitrain check`, `train`, `--set` and the form, never a file written
outside the run or a failure at the final save."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuitrain.cli.main import main
from tuitrain.config import load_config
from tuitrain.config.errors import ConfigError

BAD = [
    ("../../escaped", "not a path"),
    ("/tmp/abs", "not a path"),
    ("sub\\dir", "not a path"),
    ("..", "not a path"),
    (".", "not a path"),
    (".hidden", "must not start with '.'"),
    ("a\x00b", "control characters"),
    ("two\nlines", "control characters"),
    ("what?", "must not contain ?"),
    (" padded", "start or end with a space"),
    ("x" * 151, "too long: 151 bytes"),
    ("é" * 76, "too long: 152 bytes"),
]


@pytest.fixture
def run(cli, workspace: Path) -> Path:  # type: ignore[no-untyped-def]
    assert cli("new", "fae", "--preset", "sd15-lora").returncode == 0
    return workspace / "fae"


@pytest.mark.parametrize("value, says", BAD)
def test_set_reports_one_line_naming_the_key(run: Path, value: str, says: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "fae", "--set", f"saving.name={value}"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("--set: saving.name: ") and says in err


@pytest.mark.parametrize("value, shown", [("../../escaped", '"../../escaped"'), ("a\x00b", '"a\\x00b"')])
def test_config_file_is_refused_by_check_and_train(run: Path, value: str, shown: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    config = run / "config.toml"
    toml_value = value.replace("\x00", "\\u0000")
    config.write_text(config.read_text().replace('\nname = ""', f'\nname = "{toml_value}"', 1))
    for command in ("check", "train"):
        assert main([command, "fae"]) == 2
        err = capsys.readouterr().err.strip()
        assert err == f"{config}: saving.name: {err.split('saving.name: ')[1]}"
        assert err.endswith(f"got {shown}") and len(err.splitlines()) == 1
    assert not (run / "output").exists() or not any((run / "output").iterdir())
    assert not (run.parent.parent / "escaped.safetensors").exists()


def test_assignment_is_checked_too_and_plain_names_pass(run: Path) -> None:
    """The form edits a Config by assignment: the same rule applies, and lets plain names through."""
    config = load_config(run / "config.toml")
    for plain in ("", "fae", "fae-v2.1", "Fée 猫 (final)", "x" * 150, "rank_8+lr_1e-4"):
        config.saving.name = plain
        assert load_config(run / "config.toml", [f"saving.name={plain}"]).saving.name == plain
    with pytest.raises(ValueError, match="not a path"):
        config.saving.name = "../up"
    with pytest.raises(ConfigError, match="saving.name"):
        load_config(run / "config.toml", ["saving.name=/etc/x"])


async def test_the_form_shows_the_error_on_the_row(run: Path) -> None:
    from tests.config_editor.conftest import SIZE, editor, type_into
    from tuitrain.tui.config_editor.app import ConfigEditorApp

    config = run / "config.toml"
    before = config.read_text()
    app = ConfigEditorApp(config)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        row = editor(app).row("saving.name")
        await type_into(pilot, row, "../x")
        assert "not a path" in str(row.query_one(".message").render())
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert any("saving.name" in str(n.message) for n in app._notifications)  # noqa: SLF001
    assert config.read_text() == before
