"""The app collects a closed screen's garbage soon after, never while a typed key is still on its way
(tuitrain/tui/garbage.py; issue 23: the next screen opened without a collection in it)."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from tests.tui.conftest import HALFCELL, wait_until
from tuitrain.tui import base_app
from tuitrain.tui.app import HomeScreen, TuitrainApp
from tuitrain.tui.config_editor import ConfigEditorScreen


async def test_a_closed_screen_is_collected_after_it_and_never_with_a_key_in_flight(
        cli, workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    assert cli("new", "faery", "--preset", "sd15-lora").returncode == 0
    settled: list[int] = []
    monkeypatch.setattr(base_app, "settle_garbage", lambda: settled.append(1))
    app = TuitrainApp(workspace, image_protocol=HALFCELL)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: settled == [1])  # once after the first frame
        await pilot.press("e")
        assert isinstance(app.screen, ConfigEditorScreen)
        await pilot.pause()
        app._key_in_flight = 99  # a key whose marker is still travelling (KeyOrderApp)
        app.screen.action_close()  # the editor closes: its widgets are garbage
        await pilot.pause(3 * base_app.SETTLE_AFTER_CLOSE)
        assert isinstance(app.screen, HomeScreen)
        assert settled == [1]  # not with the key in flight: the collection waits
        app._key_in_flight = None
        await wait_until(pilot, lambda: settled == [1, 1])
    assert gc.get_freeze_count() == 0 and gc.isenabled()  # the process's collector as it was
