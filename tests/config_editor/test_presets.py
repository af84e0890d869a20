"""Presets from the editor: load one (with a confirmation over unsaved edits), save the config
as a user preset, and find it in `tuitrain presets` and `tuitrain new --preset`."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import OptionList

from tests.config_editor.conftest import SIZE, editor, settled, shown_value, type_into, wait_for
from tuitrain.config import load_config
from tuitrain.config.io import read_toml
from tuitrain.config.presets import preset_body, user_presets_dir
from tuitrain.tui.config_editor.app import ConfigEditorApp
from tuitrain.tui.config_editor.dialogs import ConfirmDialog, PresetPicker, SavePresetDialog


async def pick_preset(pilot, name: str) -> None:  # type: ignore[no-untyped-def]
    """ctrl+o, move to `name` in the list, Enter."""
    await pilot.press("ctrl+o")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, PresetPicker))
    options = pilot.app.screen.query_one(OptionList)
    wanted = next(i for i in range(options.option_count) if options.get_option_at_index(i).id == name)
    options.highlighted = wanted
    await pilot.press("enter")
    await pilot.pause()


async def test_load_preset_asks_over_unsaved_edits_then_replaces_values(run_config: Path) -> None:
    data_before = read_toml(run_config)["data"]["concepts"]
    app = ConfigEditorApp(run_config)
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await type_into(pilot, screen.row("lora.rank"), "8")
        assert screen.document.dirty

        # No: nothing changes.
        await pick_preset(pilot, "sdxl-lora-prodigy")
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("n")
        await pilot.pause()
        assert app.screen is screen and screen.document.get("lora.rank") == 8
        assert screen.document.get("preset") == "sdxl-lora"

        # Yes: the preset's values, this run's data and base model kept, marks against the new preset.
        await pick_preset(pilot, "sdxl-lora-prodigy")
        await pilot.press("y")
        await wait_for(pilot, lambda: screen.document.get("preset") == "sdxl-lora-prodigy")
        await settled(pilot, screen)
        rows = screen.rows()
        assert screen.document.get("optimizer.name") == "prodigy"
        assert screen.document.get("data.concepts") == data_before
        assert screen.document.get("model.base") == "stabilityai/stable-diffusion-xl-base-1.0"
        assert shown_value(screen.row("optimizer.name")) == "prodigy"
        assert not [r.path for r in rows if r.has_class("changed")]  # everything is the preset's now
        assert "preset sdxl-lora-prodigy" in str(screen.query_one("#status").render())
        await pilot.press("ctrl+s")
        await pilot.pause()
    config = load_config(run_config)
    assert config.preset == "sdxl-lora-prodigy" and config.optimizer.name == "prodigy"
    assert config.training.learning_rate == 1.0


async def test_load_preset_of_another_family_takes_its_base_model(run_config: Path, tmp_path: Path) -> None:
    """An SDXL checkpoint cannot be the base of an SD 1.5 preset: the base model is the preset's."""
    app = ConfigEditorApp(run_config)
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await type_into(pilot, screen.row("model.base"), str(tmp_path))
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert not screen.document.dirty  # saved: no question this time
        await pick_preset(pilot, "sd15-lora")
        await wait_for(pilot, lambda: screen.document.get("preset") == "sd15-lora")
        assert screen.document.get("model.family") == "sd15"
        assert screen.document.get("model.base") != str(tmp_path)
        assert shown_value(screen.row("model.base")) == screen.document.get("model.base")
        assert screen.document.dirty


async def test_save_as_user_preset_and_use_it_from_the_cli(run_config: Path, tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    from tests.tui.conftest import make_dataset

    app = ConfigEditorApp(run_config)
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await type_into(pilot, screen.row("lora.rank"), "12")
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: isinstance(app.screen, SavePresetDialog))
        dialog = app.screen
        error = dialog.query_one("#preset-error")

        await pilot.press(*"../x", "enter", "enter")  # a bad name is refused with the rule
        await pilot.pause()
        assert "not a usable preset name" in str(error.render()) and app.screen is dialog

        await pilot.press("ctrl+a", "ctrl+k", *"painterly", "enter")  # the name field has the cursor again
        app.copy_to_clipboard("my painterly SDXL style")
        await pilot.press("ctrl+a", "ctrl+k", "ctrl+v", "enter")
        await wait_for(pilot, lambda: app.screen is screen)
        assert any("Saved preset painterly" in str(n.message) for n in app._notifications)

        # The same name again: a second Save confirms the overwrite.
        await type_into(pilot, screen.row("lora.rank"), "24")
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: isinstance(app.screen, SavePresetDialog))
        dialog = app.screen
        await pilot.press(*"painterly", "enter")  # the name, then on to the description
        app.copy_to_clipboard("my painterly SDXL style")
        await pilot.press("ctrl+a", "ctrl+k", "ctrl+v", "enter")
        await pilot.pause()
        assert "exists" in str(dialog.query_one("#preset-error").render()) and app.screen is dialog
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is screen)

    saved = user_presets_dir() / "painterly.toml"
    body = read_toml(saved)
    assert body["lora"]["rank"] == 24 and body["description"] == "my painterly SDXL style"
    assert body["model"]["base"] == "stabilityai/stable-diffusion-xl-base-1.0"  # the base model stays
    assert "concepts" not in body.get("data", {}) and "preset" not in body  # this run's data does not

    listed = cli("presets")
    assert listed.returncode == 0
    line = next(line for line in listed.stdout.splitlines() if line.startswith("painterly"))
    assert line.endswith("my painterly SDXL style (user)")
    data = make_dataset(tmp_path / "5_owl")
    made = cli("new", "owl", "--preset", "painterly", "--data", str(data))
    assert made.returncode == 0, made.stderr
    config = load_config(Path(run_config).parents[1] / "owl" / "config.toml")
    assert (config.preset, config.lora.rank, config.model.family) == ("painterly", 24, "sdxl")
    assert config.training.lr_scheduler == "cosine"  # from sdxl-lora, carried in the preset
    assert [c.path for c in config.data.concepts] == [str(data)]


async def test_saving_over_a_builtin_name_warns_first(run_config: Path) -> None:
    app = ConfigEditorApp(run_config)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: isinstance(app.screen, SavePresetDialog))
        dialog = app.screen
        await pilot.press(*"sd15-lora", "enter", "enter")
        await pilot.pause()
        assert "built-in preset" in str(dialog.query_one("#preset-error").render())
        await pilot.press("escape")
        await pilot.pause()
    assert not (user_presets_dir() / "sd15-lora.toml").exists()


def test_preset_body_keeps_the_recipe_and_drops_the_run() -> None:
    data = {
        "version": 1, "preset": "sdxl-lora", "description": "old",
        "model": {"family": "sdxl", "base": "/models/sdxl.safetensors"},
        "data": {"resolution": 1024, "concepts": [{"path": "/data/10_faery"}]},
        "training": {"method": "lora", "epochs": 10},  # 10 is the default: left out
        "saving": {"name": "faery", "dtype": "bf16"},
    }
    body = preset_body(data, "  new  ")
    assert body == {
        "description": "new",
        "model": {"family": "sdxl", "base": "/models/sdxl.safetensors"},
        "data": {"resolution": 1024},
        "training": {"method": "lora"},
        "saving": {"dtype": "bf16"},
    }


def test_presets_command_marks_a_user_preset_that_replaces_a_builtin(cli) -> None:  # type: ignore[no-untyped-def]
    from tuitrain.config.presets import PresetExists, save_user_preset

    save_user_preset("sd15-lora", {"model": {"family": "sd15"}, "lora": {"rank": 4}}, "my sd15 lora")
    try:
        save_user_preset("sd15-lora", {}, "again")
    except PresetExists as exc:
        assert "sd15-lora" in str(exc)
    else:
        raise AssertionError("an existing user preset was overwritten without overwrite=True")
    out = cli("presets")
    assert "my sd15 lora (user, replaces the built-in one)" in out.stdout
    assert "sdxl-lora" in out.stdout and "(user" not in next(
        line for line in out.stdout.splitlines() if line.startswith("sdxl-lora ")
    )
