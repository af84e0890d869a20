"""Per-concept settings in the form (issue 22): a concept's flip is true / false / unset, not a switch."""

from __future__ import annotations

import sys
from pathlib import Path


from tests.config_editor.conftest import SIZE, editor, type_into
from tuitrain.config import load_config
from tuitrain.tui.config_editor.app import ConfigEditorApp

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


async def test_a_concepts_own_settings_edit_and_unset(run_config: Path) -> None:
    app = ConfigEditorApp(run_config)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = editor(app)
        flip = (await screen.row("data.concepts[0].flip").open_editor())
        assert flip.is_blank()  # unset: [data]'s flip decides
        flip.value = True
        (await screen.row("data.concepts[0].crop_jitter").open_editor()).value = False
        await type_into(pilot, screen.row("data.concepts[0].resolution"), "768")
        await type_into(pilot, screen.row("data.concepts[0].loss_weight"), "0.5")
        await pilot.pause()
        await pilot.press("ctrl+s")
        await pilot.pause()
    concept = tomllib.loads(run_config.read_text())["data"]["concepts"][0]
    assert (concept["flip"], concept["crop_jitter"], concept["resolution"], concept["loss_weight"]) == (
        True, False, 768, 0.5)
    assert load_config(run_config).data.concepts[0].flip is True

    app = ConfigEditorApp(run_config)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = editor(app)
        flip = (await screen.row("data.concepts[0].flip").open_editor())
        assert flip.value is True
        flip.clear()  # back to unset
        await pilot.pause()
        await pilot.press("ctrl+s")
        await pilot.pause()
    assert "flip" not in tomllib.loads(run_config.read_text())["data"]["concepts"][0]
    assert load_config(run_config).data.concepts[0].flip is None
