"""Saving a config keeps what the user wrote around the values: comments, blank lines, spelling.

The editor's ctrl+s and `tuitrain train RUN --set ...` both write through
tuitrain.config.save_config; over an existing file it changes the values in place.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

from tests.config_editor.conftest import SIZE, editor, type_into
from tuitrain.config import dump_config, load_config, save_config
from tuitrain.config.io import config_data
from tuitrain.tui.config_editor.app import ConfigEditorApp


def commented(path: Path) -> str:
    """The run's config with a user's notes added; returns the new text."""
    text = path.read_text()
    text = text.replace("version = 1\n", "version = 1\n# my note: the faery set, second try\n", 1)
    text = text.replace("rank = 32\n", "rank = 32  # keep small\n", 1)
    text = text.replace("[lora]\n", "# LoRA settings from the forum thread\n[lora]\n", 1)
    text = text.replace("learning_rate = 0.0001\n", "learning_rate = 1e-4\n", 1)
    path.write_text(text)
    return text


def changed_lines(before: str, after: str) -> list[str]:
    return [line for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


async def test_ctrl_s_in_the_editor_keeps_comments_and_layout(run_config: Path) -> None:
    before = commented(run_config)
    app = ConfigEditorApp(run_config)
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await type_into(pilot, screen.row("lora.rank"), "8")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert not screen.document.dirty

    after = run_config.read_text()
    assert changed_lines(before, after) == ["-rank = 32  # keep small", "+rank = 8  # keep small"]
    assert load_config(run_config).lora.rank == 8


def test_save_config_fills_in_a_short_file_around_its_comments(tmp_path: Path) -> None:
    """A hand-written file gets the keys the schema adds, each in its table, comments where they were."""
    path = tmp_path / "mine.toml"
    path.write_text(
        "# my SDXL run\n"
        'preset = "sdxl-lora"\n'
        "\n"
        "[lora]\n"
        "rank = 8  # keep small\n"
        "\n"
        "# the optimizer I trust\n"
        "[optimizer]\n"
        'name = "prodigy"  # lr free\n'
    )
    config = load_config(path, ["training.epochs=3"])  # as `train RUN --set training.epochs=3` does
    save_config(config, path)

    text = path.read_text()
    assert text.startswith("# my SDXL run\npreset = \"sdxl-lora\"\n")
    assert "\n[lora]\n" in text and "rank = 8  # keep small\n" in text
    assert 'name = "prodigy"  # lr free\n' in text
    # a new key of [lora] goes after its last key, not under the comment that leads into [optimizer]
    lora = text.split("\n[lora]\n", 1)[1].split("# the optimizer I trust\n[optimizer]\n", 1)[0]
    assert "alpha = " in lora and "rank = 8  # keep small\n" in lora
    assert "\n[training]\n" in text and "epochs = 3\n" in text
    assert config_data(load_config(path)) == config_data(config)


def test_save_config_drops_what_the_config_no_longer_has(tmp_path: Path) -> None:
    config = load_config_text(tmp_path, 'preset = "sdxl-lora"\n')  # training.max_steps unset
    path = tmp_path / "c.toml"
    save_config(config, path)
    text = path.read_text().replace("[training]\n", "[training]\n# why\nmax_steps = 100  # a quick look\n", 1)
    path.write_text(text.replace("[model]\n", "[model]\nvariant_note = 1  # not an option\n", 1))

    save_config(config, path)
    after = path.read_text()
    assert "max_steps" not in after and "variant_note" not in after
    assert "[training]\n# why\n" in after  # a comment line stays when the key below it goes
    assert config_data(load_config(path)) == config_data(config)


def load_config_text(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "src.toml"
    path.write_text(text)
    return load_config(path)


def test_a_new_file_is_written_as_before(tmp_path: Path) -> None:
    config = load_config_text(tmp_path, 'preset = "sdxl-lora"\n')
    save_config(config, tmp_path / "new.toml")
    assert (tmp_path / "new.toml").read_text() == dump_config(config)


def test_a_failed_save_leaves_the_old_file_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.toml"
    path.write_text('preset = "sdxl-lora"  # mine\n')
    config = load_config(path, ["lora.rank=4"])

    def full_disk(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError):
        save_config(config, path)
    assert path.read_text() == 'preset = "sdxl-lora"  # mine\n'
    assert [p.name for p in tmp_path.iterdir()] == ["c.toml"]  # no temp file left behind
