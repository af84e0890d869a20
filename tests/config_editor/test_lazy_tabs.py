"""The editor's first frame composes only the tab it opens on (issue 23: mounting every tab first took
1.3-2 s); the other tabs are built after it, or at once when a key asks for one. Nothing the user
types is lost either way: values live in the document, keys typed after alt+N land in tab N, and
save writes every field. Also: moving the cursor no longer rebuilds the footer's keys."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input
from textual.widgets._footer import FooterKey

from tests.config_editor.conftest import SIZE, editor, settled, wait_for
from tests.tui.conftest import burst
from tuitrain.config import load_config
from tuitrain.tui.config_editor.app import ConfigEditorApp
from tuitrain.tui.config_editor.tab_forms import FormBuilder, TabForm


@pytest.fixture
def first_tab_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """No building after the first frame: every other tab is built only when a key asks for it."""

    async def nothing(self: FormBuilder) -> None:
        return None

    monkeypatch.setattr(FormBuilder, "build_rest", nothing)


async def test_the_first_frame_has_only_the_first_tab_and_a_key_builds_the_next(
    first_tab_only: None, run_config: Path
) -> None:
    app = ConfigEditorApp(run_config)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = editor(app)
        built = {form.group: form.built for form in screen.query(TabForm)}
        assert built == {group: group == screen.groups[0] for group in screen.groups}
        assert "model.family" in {row.path for row in screen.rows()}
        with pytest.raises(LookupError):
            screen.row("training.learning_rate")

        # alt+3 then the keys of a fast typist, all read before the first is handled: the tab is
        # built by the key that asks for it and the rest land in its fields, in order
        burst(app, "alt+3", "tab", "tab", "tab", "backspace", "4")
        await wait_for(pilot, lambda: screen.document.get("training.batch_size") == 4)
        assert screen.query_one("#tab-training", TabForm).built
        assert screen.row("training.batch_size").editor.has_focus
        await settled(pilot, screen)
        await pilot.press("ctrl+s")
        await pilot.pause()
    config = load_config(run_config)
    assert config.training.batch_size == 4
    assert config.model.family == "sdxl" and config.lora.rank == 32  # tabs never built are saved as they were


async def test_values_typed_survive_tab_switches_and_late_built_tabs_show_the_document(run_config: Path) -> None:
    app = ConfigEditorApp(run_config)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = editor(app)
        assert all(form.built and form.ready.is_set() for form in screen.query(TabForm))  # built after the frame
        await pilot.press("alt+5", "tab", "tab", "ctrl+a", "ctrl+k", "1", "2")
        rank = screen.row("lora.rank").editor
        assert isinstance(rank, Input) and rank.value == "12"
        for number in (1, 2, 3, 4, 6, 7, 5):
            await pilot.press(f"alt+{number}")
        assert rank.value == "12" and screen.document.get("lora.rank") == 12
        assert screen.row("lora.rank").has_class("changed")  # the ● mark
        await pilot.press("ctrl+l")  # reload from disk: the form is rebuilt, the unsaved 12 goes
        await wait_for(pilot, lambda: screen.row("lora.rank").editor.value == "32")  # type: ignore[attr-defined]
        assert screen.query_one("#tabs").active == "tab-lora"  # type: ignore[attr-defined]


async def test_moving_the_cursor_keeps_the_footers_keys(run_config: Path) -> None:
    app = ConfigEditorApp(run_config)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        keys = list(app.screen.query(FooterKey))
        assert keys
        await pilot.press("tab", "tab", "alt+3", "tab", "alt+1")
        await pilot.pause()
        assert list(app.screen.query(FooterKey)) == keys  # the same widgets: not composed again
        assert all(key.is_attached for key in keys)
