"""[objective] options show only for the families whose objective uses them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tests.config_editor.conftest import SIZE, editor, wait_for
from tuitrain.families import FAMILIES
from tuitrain.tui.config_editor.app import ConfigEditorApp
from tuitrain.tui.config_editor.screen import ConfigEditorScreen

FLOW_KEYS = ("objective.timestep_sampling", "objective.shift", "objective.auto_shift", "objective.loss_weighting")


def shown(screen: ConfigEditorScreen, path: str) -> bool:
    return screen.row(path).display


def title(screen: ConfigEditorScreen) -> str:
    return str(screen.query_one("#sec-objective-training").query_one(".section-title").render())


async def test_a_ddpm_family_shows_its_options_only(run_config: Path) -> None:
    app = ConfigEditorApp(run_config)  # sdxl: DDPM
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = editor(app)
        assert shown(screen, "objective.zero_terminal_snr")
        assert not any(shown(screen, key) for key in FLOW_KEYS)
        assert "sdxl trains with DDPM" in title(screen)


async def test_rows_follow_model_family(run_config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With sd15 registered as a flow family (none is yet), switching the family swaps the rows."""
    monkeypatch.setitem(FAMILIES, "sd15", dataclasses.replace(FAMILIES["sd15"], objective="flow"))
    app = ConfigEditorApp(run_config)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = editor(app)
        (await screen.row("model.family").open_editor()).value = "sd15"
        await wait_for(pilot, lambda: shown(screen, "objective.shift"))
        assert all(shown(screen, key) for key in FLOW_KEYS)
        assert not shown(screen, "objective.zero_terminal_snr")
        assert "sd15 trains with flow matching" in title(screen)
        (await screen.row("model.family").open_editor()).value = "sdxl"
        await wait_for(pilot, lambda: not shown(screen, "objective.shift"))
        assert shown(screen, "objective.zero_terminal_snr")


async def test_a_hidden_option_with_a_problem_shows(run_config: Path) -> None:
    """A flow option the file sets out of range on a DDPM family blocks saving: its row shows, with the error."""
    text = run_config.read_text()
    assert text.count("\nauto_shift = false\n") == 1  # in [objective], which new runs write out in full
    run_config.write_text(text.replace("\nauto_shift = false\n", "\nshift = 50.0\nauto_shift = false\n"))
    app = ConfigEditorApp(run_config)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = editor(app)
        assert shown(screen, "objective.shift")
        assert not shown(screen, "objective.loss_weighting")
        assert "at most 20" in str(screen.row("objective.shift").query_one(".message").render())
