"""The form: every schema option reachable, each widget type edits and saves, errors name the key."""

from __future__ import annotations

import sys
from pathlib import Path


from tests.config_editor.conftest import SIZE, editor, shown_value, type_into, wait_for
from tuitrain.config import load_config
from tuitrain.config.io import config_data, read_toml
from tuitrain.config.options import iter_options
from tuitrain.tui.config_editor.app import ConfigEditorApp
from tuitrain.tui.config_editor.lists import ListEditor
from tuitrain.tui.config_editor.paths import item_path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib



async def test_every_schema_option_is_reachable_in_the_form(run_config: Path) -> None:
    app = ConfigEditorApp(run_config)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = editor(app)
        for lst in screen.query(ListEditor):
            if not lst.items:
                await lst.add_item()
        await pilot.pause()
        paths = {row.path for row in screen.rows()} | {lst.option.path for lst in screen.query(ListEditor)}
        missing = [o.path for o in iter_options() if item_path(o.path, 0) not in paths]
        assert not missing, f"options with no widget in the form: {missing}"


async def test_each_widget_type_edits_and_saves(run_config: Path, tmp_path: Path) -> None:
    app = ConfigEditorApp(run_config)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = editor(app)
        await type_into(pilot, screen.row("lora.rank"), "8")  # integer
        await type_into(pilot, screen.row("training.learning_rate"), "0.5")  # number
        await type_into(pilot, screen.row("saving.name"), "fae")  # text
        await type_into(pilot, screen.row("model.base"), str(tmp_path))  # path
        (await screen.row("training.gradient_checkpointing").open_editor()).toggle()  # switch
        (await screen.row("optimizer.name").open_editor()).value = "prodigy"  # select
        await pilot.pause()
        await pilot.press("ctrl+s")
        await pilot.pause()
    saved = tomllib.loads(run_config.read_text())
    assert saved["lora"]["rank"] == 8
    assert saved["training"]["learning_rate"] == 0.5
    assert saved["saving"]["name"] == "fae"
    assert saved["model"]["base"] == str(tmp_path)
    assert saved["training"]["gradient_checkpointing"] is False
    assert saved["optimizer"]["name"] == "prodigy"
    load_config(run_config)  # still a valid config


async def test_invalid_value_blocks_saving_with_the_key(run_config: Path) -> None:
    before = run_config.read_text()
    app = ConfigEditorApp(run_config)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = editor(app)
        row = screen.row("lora.rank")
        await type_into(pilot, row, "abc")
        assert "whole number" in str(row.query_one(".message").render())
        await pilot.press("ctrl+s")
        await pilot.pause()
        messages = [str(n.message) for n in app._notifications]
        assert any("lora.rank" in m and "whole number" in m for m in messages)
        # a cross-field rule of the schema lands on its field too
        await type_into(pilot, row, "16")
        await type_into(pilot, screen.row("data.resolution"), "1000")
        assert "multiple of" in str(screen.row("data.resolution").query_one(".message").render())
        await type_into(pilot, screen.row("training.learning_rate"), "99")
        assert "at most 10" in str(screen.row("training.learning_rate").query_one(".message").render())
    assert run_config.read_text() == before


async def test_save_without_changes_round_trips(run_config: Path) -> None:
    before = config_data(load_config(run_config))
    app = ConfigEditorApp(run_config)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+s")
        await pilot.pause()
    assert config_data(load_config(run_config)) == before


async def test_concepts_add_remove_edit(run_config: Path, tmp_path: Path) -> None:
    app = ConfigEditorApp(run_config)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = editor(app)
        concepts = screen.query_one("#f-data-concepts", ListEditor)
        await concepts.add_item()
        await pilot.pause()
        await type_into(pilot, screen.row("data.concepts[1].path"), str(tmp_path))
        await type_into(pilot, screen.row("data.concepts[1].repeats"), "3")
        prompts = screen.query_one("#f-sampling-prompts", ListEditor)
        await prompts.add_item()
        await pilot.pause()
        await type_into(pilot, screen.row("sampling.prompts[0].prompt"), "a fox")
        await concepts.remove_item(0)
        await pilot.pause()
        await pilot.press("ctrl+s")
        await pilot.pause()
    saved = read_toml(run_config)
    assert [c["path"] for c in saved["data"]["concepts"]] == [str(tmp_path)]
    assert saved["data"]["concepts"][0]["repeats"] == 3
    assert saved["sampling"]["prompts"][0]["prompt"] == "a fox"


async def test_help_marks_reset_and_essential_view(run_config: Path) -> None:
    app = ConfigEditorApp(run_config)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = editor(app)
        row = screen.row("lora.rank")
        assert not row.has_class("changed")
        await type_into(pilot, row, "64")
        assert row.has_class("changed")
        help_text = str(screen.query_one("#help").render())
        assert "lora.rank" in help_text and "default: 16" in help_text and "preset: 32" in help_text
        assert "1 <= x <= 1024" in help_text
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert screen.document.get("lora.rank") == 32
        assert shown_value(row) == "32" and not row.has_class("changed")
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert screen.has_class("essential-only")
        assert not screen.row("lora.dropout").display or screen.row("lora.dropout").styles.display == "none"
        assert screen.row("lora.rank").styles.display != "none"


async def test_side_panel_steps_and_vram_follow_the_values(run_config: Path) -> None:
    app = ConfigEditorApp(run_config)
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        derived = screen.query_one("#derived")
        await wait_for(pilot, lambda: "total steps" in str(derived.render()))
        first = str(derived.render())
        assert "estimate" in first
        await type_into(pilot, screen.row("training.epochs"), "20")
        await type_into(pilot, screen.row("training.batch_size"), "4")
        await wait_for(pilot, lambda: "20 epochs" in str(derived.render()))
        assert str(derived.render()) != first


async def test_changed_on_disk_is_reported_and_reloads(run_config: Path) -> None:
    app = ConfigEditorApp(run_config)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = editor(app)
        run_config.write_text(run_config.read_text().replace("rank = 32", "rank = 48"))
        await wait_for(pilot, lambda: screen._disk_warned)
        assert any("changed on disk" in str(n.message) for n in app._notifications)
        await pilot.press("ctrl+l")
        await pilot.pause()
        assert screen.document.get("lora.rank") == 48
        assert shown_value(screen.row("lora.rank")) == "48"


async def test_the_done_when_walkthrough(run_config: Path, tmp_path: Path) -> None:
    """Issue 7's 'done when': a run from sdxl-lora; set base, data, rank; Prodigy at lr 1; the side
    panel follows; save; `tuitrain check` accepts the file."""
    from tests.conftest import run_cli
    from tests.tui.conftest import make_dataset

    base = tmp_path / "my-sdxl"
    base.mkdir()
    (base / "model_index.json").write_text('{"_class_name": "StableDiffusionXLPipeline"}')  # check reads it
    new_data = make_dataset(tmp_path / "5_elf")
    app = ConfigEditorApp(run_config)
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        derived = screen.query_one("#derived")
        await wait_for(pilot, lambda: "total steps" in str(derived.render()))
        before = str(derived.render())
        await type_into(pilot, screen.row("model.base"), str(base))
        await type_into(pilot, screen.row("data.concepts[0].path"), str(new_data))
        await type_into(pilot, screen.row("lora.rank"), "8")
        (await screen.row("optimizer.name").open_editor()).value = "prodigy"
        await type_into(pilot, screen.row("training.learning_rate"), "1")
        await wait_for(pilot, lambda: str(derived.render()) != before and "estimate" in str(derived.render()))
        await pilot.press("ctrl+s")
        await pilot.pause()
    config = load_config(run_config)
    assert (config.model.base, config.lora.rank, config.optimizer.name) == (str(base), 8, "prodigy")
    assert config.training.learning_rate == 1.0 and config.data.concepts[0].path == str(new_data)
    check = run_cli("check", str(run_config))
    assert check.returncode == 0, check.stdout + check.stderr
