"""The settings file: validated key by key, remembered theme, remappable keys."""

from __future__ import annotations

from pathlib import Path

from tests.tui.conftest import HALFCELL, notifications, review_app, settled
from tuitrain.settings import load_settings, save_setting, settings_path
from tuitrain.tui.app import TuitrainApp, known_binding_ids
from tuitrain.tui.review.screen import ReviewScreen


def write_settings(text: str) -> Path:
    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_missing_file_is_the_defaults() -> None:
    loaded = load_settings()
    assert loaded.problems == []
    settings = loaded.settings
    assert (settings.theme, settings.image_protocol, settings.keys) == ("tuitrain-dark", "auto", {})


def test_each_problem_names_its_key_and_the_rest_still_applies() -> None:
    write_settings(
        'theme = 3\nimage_protocol = "iterm"\nthem = "x"\n'
        '[keys]\n"review.next" = "right,j"\nreview.previous = ["left", "k"]\n"review.cull" = "del ete"\n'
    )
    loaded = load_settings()
    text = "\n".join(loaded.problems)
    assert "theme: must be a theme name, got 3" in text
    assert "image_protocol: must be one of auto, kitty, sixel, halfcell, unicode, got 'iterm'" in text
    assert "them: unknown setting (did you mean theme?)" in text
    assert "keys.review.cull: not a list of key names" in text
    assert all(str(settings_path()) in problem for problem in loaded.problems)
    assert loaded.settings.keys == {"review.next": "right,j", "review.previous": "left,k"}  # both spellings
    assert loaded.settings.image_protocol == "auto" and loaded.settings.theme == "tuitrain-dark"


def test_broken_toml_gives_defaults_and_one_message() -> None:
    write_settings('theme = "tuitrain-light"\n[keys\n')
    loaded = load_settings()
    assert len(loaded.problems) == 1 and "not valid TOML" in loaded.problems[0] and "line 2" in loaded.problems[0]
    assert loaded.settings.theme == "tuitrain-dark"


def test_save_setting_keeps_the_other_keys_and_leaves_a_broken_file_alone() -> None:
    write_settings('image_protocol = "halfcell"\n[keys]\n"review.next" = "j"\n')
    assert save_setting("theme", "tuitrain-light") is None
    loaded = load_settings()
    assert (loaded.settings.theme, loaded.settings.image_protocol) == ("tuitrain-light", "halfcell")
    assert loaded.settings.keys == {"review.next": "j"}
    broken = write_settings("theme = \n")
    problem = save_setting("theme", "tuitrain-dark")
    assert problem is not None and "not saved" in problem
    assert broken.read_text() == "theme = \n"


async def test_broken_settings_notify_by_key_and_the_app_still_runs(workspace: Path) -> None:
    write_settings('theme = "no-such-theme"\n[keys]\n"review.nxt" = "j"\n')
    app = TuitrainApp(workspace, image_protocol=HALFCELL)
    async with app.run_test() as pilot:
        await pilot.pause()
        messages = "\n".join(notifications(app))
        assert "theme: no theme named 'no-such-theme'" in messages
        assert "keys.review.nxt: no such binding (did you mean review.next?)" in messages
        assert app.theme == "tuitrain-dark"


async def test_keys_are_remapped_from_the_settings(dataset: Path) -> None:
    write_settings('[keys]\n"review.next" = "j"\n"review.previous" = "k"\n"review.cull" = "x"\n')
    app = review_app(dataset)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await settled(pilot, "a.bmp")
        await pilot.press("right")  # no longer bound
        await pilot.pause()
        assert screen.model.position == 0
        await pilot.press("j")
        await settled(pilot, "b.bmp")
        await pilot.press("k")
        await settled(pilot, "a.bmp")
        await pilot.press("x")
        await settled(pilot, "b.bmp")
        assert not (dataset / "a.bmp").exists()
        await pilot.press("question_mark")  # the help shows the keys in force
        keys = {row[3]: row[2] for row in app.screen.rows}  # type: ignore[attr-defined]
        assert keys["review.next"] == "j" and keys["review.cull"] == "x"


def test_every_binding_has_an_id_to_remap_it_by() -> None:
    known = known_binding_ids()
    assert {"review.next", "review.cull", "review.undo", "caption.save", "home.new", "app.help"} <= set(known)
    for cls in (ReviewScreen,):
        assert all(binding.id for binding in cls.BINDINGS)


async def test_theme_switch_is_remembered(workspace: Path) -> None:
    app = TuitrainApp(workspace, image_protocol=HALFCELL)
    async with app.run_test() as pilot:
        await pilot.pause()
        shipped = {"tuitrain-dark", "tuitrain-light", "tuitrain-high-contrast", "tuitrain-ansi"}
        assert shipped <= set(app.available_themes)
        app.theme = "tuitrain-light"  # what the command palette's Theme command does
        await pilot.pause()
    assert load_settings().settings.theme == "tuitrain-light"
    again = TuitrainApp(workspace, image_protocol=HALFCELL)
    async with again.run_test() as pilot:
        await pilot.pause()
        assert again.theme == "tuitrain-light"


async def test_command_palette_lists_the_screens_actions(dataset: Path) -> None:
    app = review_app(dataset)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await settled(pilot, "a.bmp")
        titles = {command.title for command in app.get_system_commands(screen)}
        assert {"Theme", "Help", "Cull", "Undo", "Caption", "Report", "Bucket crop", "Next"} <= titles
        cull = next(c for c in app.get_system_commands(screen) if c.title == "Cull")
        app.call_next(cull.callback)  # as the palette runs it
        await settled(pilot, "b.bmp")
        assert not (dataset / "a.bmp").exists()


async def test_the_command_palette_key_is_remappable_too(workspace: Path) -> None:
    from textual.command import CommandPalette

    write_settings('[keys]\n"app.command_palette" = "ctrl+k"\n')
    app = TuitrainApp(workspace, image_protocol=HALFCELL)
    async with app.run_test() as pilot:
        await pilot.pause()
        assert notifications(app) == []
        await pilot.press("ctrl+p")
        assert not isinstance(app.screen, CommandPalette)
        await pilot.press("ctrl+k")
        assert isinstance(app.screen, CommandPalette)
