"""A config the form cannot show (an unknown key, a table that is not one, a value that is not a
choice) is not a dead end: each such key is a row the user renames, fixes or deletes, then saves."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Select

from tests.config_editor.conftest import SIZE, editor, settled, wait_for
from tests.tmux import Tmux
from tests.tui.conftest import notifications
from tuitrain.config import load_config
from tuitrain.config.io import config_data
from tuitrain.tui.config_editor.app import ConfigEditorApp
from tuitrain.tui.config_editor.form_tabs import FormTabs
from tuitrain.tui.config_editor.extra_rows import ExtraKeyRow
from tuitrain.tui.config_editor.screen import ConfigEditorScreen


def break_config(path: Path, old: str, new: str, append: str = "") -> str:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1) + append)
    return path.read_text()


def extra(screen: ConfigEditorScreen, path: str) -> ExtraKeyRow:
    rows = {row.path: row for row in screen.extra_rows()}
    assert path in rows, list(rows)
    return rows[path]


def message(row: ExtraKeyRow) -> str:
    return str(row.query_one(".message").render())


async def test_unknown_keys_are_rows_to_rename_and_the_config_then_saves(run_config: Path) -> None:
    broken = break_config(run_config, "rank = 32\n", "rnak = 8  # keep small\n", "\n[lroa]\ndropout = 0.1\n")
    app = ConfigEditorApp(run_config)
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await settled(pilot, screen)
        assert [row.path for row in screen.extra_rows()] == ["lroa", "lora.rnak"]  # first tab first
        lroa, rnak = extra(screen, "lroa"), extra(screen, "lora.rnak")
        assert lroa.name_input.has_focus  # the cursor starts on what needs fixing
        assert message(rnak) == "unknown key (did you mean lora.rank?)"
        assert str(rnak.query_one(".extra-value").value) == "8"  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert run_config.read_text() == broken  # refused: nothing written

        # the table: its name edited and Enter
        await pilot.press("ctrl+a", "ctrl+k", *"lora", "enter")
        await wait_for(pilot, lambda: [row.path for row in screen.extra_rows()] == ["lora.rnak"])
        assert screen.document.get("lora.dropout") == 0.1  # merged into [lora]
        # the key: its Rename button (the suggestion), reached with Tab from the name
        rnak = extra(screen, "lora.rnak")
        assert screen.query_one("#tabs", FormTabs).active == "tab-lora" and rnak.name_input.has_focus
        await pilot.press("tab", "tab", "enter")
        await wait_for(pilot, lambda: not screen.extra_rows())
        assert screen.row("lora.rank").editor.has_focus  # the cursor follows the value
        assert screen.document.get("lora.rank") == 8
        await settled(pilot, screen)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not screen.document.dirty)

    text = run_config.read_text()
    assert "rnak" not in text and "lroa" not in text
    config = load_config(run_config)
    assert config.lora.rank == 8 and config.lora.dropout == 0.1


async def test_an_unknown_key_can_be_deleted(run_config: Path) -> None:
    before = config_data(load_config(run_config))
    break_config(run_config, "[optimizer]\n", "[optimizer]\nlearning_rate = 0.5  # lr here?\n")
    app = ConfigEditorApp(run_config)
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await settled(pilot, screen)
        row = extra(screen, "optimizer.learning_rate")
        assert message(row).startswith("unknown key (did you mean ")
        assert screen.query_one("#tabs", FormTabs).active == "tab-optimizer"
        await pilot.press("tab", "tab", "tab", "enter")  # value, Rename, Delete
        await wait_for(pilot, lambda: not screen.extra_rows())
        assert "optimizer.learning_rate deleted" in notifications(app)  # type: ignore[arg-type]
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not screen.document.dirty)
    assert "learning_rate = 0.5" not in run_config.read_text()
    assert config_data(load_config(run_config)) == before


async def test_a_table_holding_a_value_is_fixed_by_writing_a_table(run_config: Path) -> None:
    text = run_config.read_text()
    lora_table = text[text.index("[lora]\n"):text.index("[embedding]\n")]
    run_config.write_text('lora = "big"\n' + text.replace(lora_table, ""))
    app = ConfigEditorApp(run_config)
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await settled(pilot, screen)
        row = extra(screen, "lora")
        assert message(row) == 'must be a table, got "big"'
        await pilot.press("tab", "ctrl+a", "ctrl+k", *"{rank=4}")  # the value, as TOML
        await settled(pilot, screen)
        assert message(row) == "" and screen.document.get("lora") == {"rank": 4}
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not screen.document.dirty and not screen.extra_rows())
    config = load_config(run_config)
    assert config.lora.rank == 4 and config.lora.alpha == 16.0  # the rest from the preset


async def test_a_value_that_is_not_a_choice_stays_until_the_user_picks_one(run_config: Path) -> None:
    break_config(run_config, 'name = "adamw"\n', 'name = "adamw9"\n')
    app = ConfigEditorApp(run_config)
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await settled(pilot, screen)
        row = screen.row("optimizer.name")
        select = row.editor
        assert isinstance(select, Select) and select.value is Select.NULL  # not quietly 'adamw'
        assert screen.document.get("optimizer.name") == "adamw9"
        assert "got \"adamw9\"" in str(row.query_one(".message").render())
        select.value = "prodigy"
        await settled(pilot, screen)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not screen.document.dirty)
    assert load_config(run_config).optimizer.name == "prodigy"


def test_an_unknown_key_is_renamed_in_tmux(tmux: Tmux, run_config: Path) -> None:
    break_config(run_config, "rank = 32\n", "rnak = 8\n")
    tmux.start_tuitrain("config", str(run_config))
    tmux.wait_for("lora.rnak", "did you mean lora.rank?", "Rename to lora.rank")
    tmux.keys("End", "BSpace", "BSpace", "BSpace", "BSpace", "rank", "Enter")  # the name: rnak -> rank
    tmux.wait_for("Renamed lora.rnak to lora.rank")
    tmux.keys("C-s")
    tmux.wait_for("Saved", "  ·  saved")
    tmux.keys("Escape")
    tmux.wait_closed()
    assert load_config(run_config).lora.rank == 8
