"""Fixtures for the config editor: a run made from a preset, with a small data folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Input, Select

from tests.conftest import run_cli
from tuitrain.tui.config_editor.app import ConfigEditorApp
from tuitrain.tui.config_editor.screen import ConfigEditorScreen
from tuitrain.tui.config_editor.widgets import LABEL_WIDTH, FieldRow

SIZE = (160, 48)
PASTE_OVER = 12  # type_into pastes longer texts (one key each would make the tests slow)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    from tests.tui.conftest import make_dataset

    return make_dataset(tmp_path / "10_faery")


@pytest.fixture
def run_config(workspace: Path, data_dir: Path) -> Path:
    """config.toml of a run made from sdxl-lora with one data folder."""
    result = run_cli("new", "faery", "--preset", "sdxl-lora", "--data", str(data_dir))
    assert result.returncode == 0, result.stderr
    return workspace / "faery" / "config.toml"


async def wait_for(pilot: Pilot[object], condition: Callable[[], bool], timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError("condition not met in time")


def count_layouts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """From now on, a 1 per full layout of any screen (Textual's Screen._refresh_layout)."""
    layouts: list[int] = []
    refresh_layout = Screen._refresh_layout

    def counting(self: Screen[object], *args: object, **kwargs: object) -> None:
        layouts.append(1)
        refresh_layout(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Screen, "_refresh_layout", counting)
    return layouts


def shown_value(row: FieldRow) -> str:
    """The value as the row shows it on screen: its editor's, or the text it draws before it has one."""
    if row.has_editor:
        widget = row.editor
        if isinstance(widget, Select):
            return "" if widget.value is Select.NULL else str(widget.value)
        assert isinstance(widget, Input), widget
        return widget.value
    drawn = row.face(SIZE[0] - LABEL_WIDTH).plain
    return drawn.removesuffix(" ").removesuffix("▼").strip() if row.kind == "select" else drawn.strip()


def editor(app: ConfigEditorApp) -> ConfigEditorScreen:
    screen = app.screen
    assert isinstance(screen, ConfigEditorScreen)
    return screen


async def settled(pilot: Pilot[object], screen: ConfigEditorScreen) -> None:
    """Wait for the whole-config check that runs once typing pauses."""
    await wait_for(pilot, lambda: not screen.validation_pending)
    await pilot.pause()


async def type_into(pilot: Pilot[object], row: FieldRow, text: str) -> None:
    """Show the row's tab, focus its input, clear it and type (or paste a long text), as a user
    would; then let the debounced validation run."""
    screen = row.screen
    assert isinstance(screen, ConfigEditorScreen)
    screen.query_one("#tabs").active = f"tab-{row.option.group}"  # type: ignore[attr-defined]
    await pilot.pause()
    row.editor.focus()
    await pilot.pause()
    await pilot.press("ctrl+a", "ctrl+k")  # home, then delete to the end
    if len(text) > PASTE_OVER:
        pilot.app.copy_to_clipboard(text)  # long values (paths) are pasted, as users do
        await pilot.press("ctrl+v")
    else:
        await pilot.press(*text)
    await settled(pilot, screen)
