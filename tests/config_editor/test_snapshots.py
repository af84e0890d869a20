"""Snapshots of the config editor at 80x24 and 160x48.

The status line shows the config's path, which lives in a per-test tmp folder: it is
pinned by patching screen.shown_path. The steps panel waits for the pre-flight scan;
the cursor does not blink.
Update after an intended change with: pytest tests/config_editor/test_snapshots.py --snapshot-update
and look at the SVGs under tests/config_editor/__snapshots__/ before committing them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from tests.config_editor.conftest import settled, wait_for
from tuitrain.tui.config_editor import screen as screen_module
from tuitrain.tui.config_editor.app import ConfigEditorApp
from tuitrain.tui.config_editor.screen import ConfigEditorScreen


@pytest.fixture(autouse=True)
def _fixed_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(screen_module, "shown_path", lambda path: "~/runs/faery/config.toml")


def ready_after(*keys: str):  # type: ignore[no-untyped-def]
    """run_before for snap_compare: wait for the step count, press keys, let validation settle."""

    async def run_before(pilot: Pilot[object]) -> None:
        await pilot.pause()  # the editor is the app's first screen, composed after the app is ready
        screen = pilot.app.screen
        assert isinstance(screen, ConfigEditorScreen)
        for field in screen.query(Input):
            field.cursor_blink = False  # a blinking cursor is drawn or not by timing
        derived = screen.query_one("#derived")
        await wait_for(pilot, lambda: "total steps" in str(derived.render()))
        await pilot.press(*keys)
        await settled(pilot, screen)
        for field in screen.query(Input):  # the fields of a tab built by the keys (the editor builds tabs lazily)
            field.cursor_blink = False
        await pilot.pause(0.2)

    return run_before


def test_config_editor_80x24(snap_compare, run_config: Path) -> None:  # type: ignore[no-untyped-def]
    """The first tab of a run made from sdxl-lora, in the smallest terminal we support."""
    assert snap_compare(ConfigEditorApp(run_config), terminal_size=(80, 24), run_before=ready_after())


def test_config_editor_160x48_method_tab(snap_compare, run_config: Path) -> None:  # type: ignore[no-untyped-def]
    """The Method tab (alt+5) with lora.rank changed: the ● mark, the help panel, the [lora],
    [embedding] and [finetune] sections (the last two unused by a LoRA), and the VRAM estimate."""
    keys = ("alt+5", "tab", "tab", "ctrl+a", "ctrl+k", "6", "4")
    assert snap_compare(ConfigEditorApp(run_config), terminal_size=(160, 48), run_before=ready_after(*keys))
