"""Fixtures for the config editor: a run made from a preset, with a small data folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot

from tests.conftest import run_cli
from tuitrain.tui.config_editor.app import ConfigEditorApp
from tuitrain.tui.config_editor.screen import ConfigEditorScreen


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


def editor(app: ConfigEditorApp) -> ConfigEditorScreen:
    screen = app.screen
    assert isinstance(screen, ConfigEditorScreen)
    return screen
