"""Tab keys, the method sections of the form, and validation as you type without re-checking
the whole config on every key."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Footer

from tests.config_editor.conftest import SIZE, editor, settled, wait_for
from tuitrain.tui.config_editor import screen as screen_module
from tuitrain.tui.config_editor.app import ConfigEditorApp
from tuitrain.tui.config_editor.form_tabs import FormTabs
from tuitrain.tui.config_editor.screen import ConfigEditorScreen
from tuitrain.tui.help import HelpScreen


def active_tab(screen: ConfigEditorScreen) -> str:
    return screen.query_one("#tabs", FormTabs).active


def focused_key(screen: ConfigEditorScreen) -> str:
    node = screen.focused
    while node is not None and not hasattr(node, "option"):
        node = node.parent  # type: ignore[assignment]
    return node.path if node is not None else ""  # type: ignore[attr-defined]


async def test_tab_keys_switch_tabs_and_put_the_cursor_in_the_first_field(run_config: Path) -> None:
    app = ConfigEditorApp(run_config)
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await pilot.pause()
        assert screen.groups[:5] == ["model", "data", "training", "optimizer", "lora"]
        await pilot.press("alt+5")
        await pilot.pause()
        assert active_tab(screen) == "tab-lora" and focused_key(screen) == "lora.type"
        await pilot.press("ctrl+pagedown")
        await pilot.pause()
        assert active_tab(screen) == "tab-sampling" and focused_key(screen) == "sampling.every_epochs"
        await pilot.press("ctrl+pageup", "ctrl+pageup")
        await pilot.pause()
        assert active_tab(screen) == "tab-optimizer" and focused_key(screen) == "optimizer.name"
        await pilot.press("alt+1", "ctrl+pageup")  # wraps around
        await pilot.pause()
        assert active_tab(screen) == f"tab-{screen.groups[-1]}"
        # typing goes to the focused field of the tab shown
        await pilot.press("alt+3", "tab")
        await pilot.pause()
        assert focused_key(screen) == "training.epochs"

        footer = " ".join(str(key.render()) for key in app.screen.query_one(Footer).query("FooterKey"))
        for shown in ("Save", "Load preset", "Save as preset", "Next tab", "Keys"):
            assert shown in footer, footer
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        listed = {row[3]: row[2] for row in app.screen.rows}  # type: ignore[attr-defined]  # id -> keys
        assert listed["config.tab.next"] == "ctrl+pagedown" or "PgDn" in listed["config.tab.next"]
        assert listed["config.tab.5"] == "alt+5"
        for binding_id in ("config.tab.previous", "config.load_preset", "config.save_preset"):
            assert binding_id in listed


async def test_method_sections_are_titled_and_follow_training_method(run_config: Path) -> None:
    app = ConfigEditorApp(run_config)
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await pilot.pause()
        titles = {str(t.render()).split()[0] for t in screen.query(".section-title")}
        assert {"[lora]", "[embedding]", "[finetune]", "[training]", "[ema]"} <= titles
        for key in ("embedding.token", "finetune.single_file", "ema.mode"):
            screen.row(key)  # the new schema sections have rows
        embedding = screen.query_one("#sec-embedding-lora")
        assert embedding.has_class("unused") and not screen.query_one("#sec-lora-lora").has_class("unused")
        assert "not used: training.method is lora" in str(embedding.query_one(".section-title").render())

        (await screen.row("training.method").open_editor()).value = "embedding"
        await settled(pilot, screen)
        assert not embedding.has_class("unused") and screen.query_one("#sec-lora-lora").has_class("unused")
        await pilot.press("ctrl+t")  # essential view: the unused [lora] section is hidden
        await pilot.pause()
        assert screen.query_one("#sec-lora-lora").styles.display == "none"
        assert embedding.styles.display != "none"


async def test_a_fields_own_error_shows_at_once_and_the_whole_config_is_checked_once(
    run_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Validation as you type: the field's check per key, the schema's once typing pauses."""
    monkeypatch.setattr(screen_module, "VALIDATE_DELAY", 2.0)  # longer than any gap between keys
    app = ConfigEditorApp(run_config)
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await pilot.pause()
        calls: list[int] = []
        real = screen.refresh_all

        def counting() -> None:
            calls.append(1)
            real()

        monkeypatch.setattr(screen, "refresh_all", counting)
        await pilot.press("alt+2")  # data: resolution is its first field
        await pilot.pause()
        row = screen.row("data.resolution")
        assert focused_key(screen) == "data.resolution"
        def message() -> str:  # the row's message line is mounted with its first message
            return str(row.query_one(".message").render())

        await pilot.press("ctrl+a", "ctrl+k", *"10x")
        assert "whole number" in message()  # the field's own check: no waiting
        await pilot.press("backspace", "0", "0")
        assert message() == "" and screen.validation_pending and calls == []
        await settled(pilot, screen)
        assert calls == [1]  # one whole-config check for six keys
        assert "multiple of" in message()  # the schema's rule, after the pause
        await pilot.press("ctrl+s")  # saving does not wait for the pause: it validates itself
        await pilot.pause()
        assert any("data.resolution" in str(n.message) for n in app._notifications)
