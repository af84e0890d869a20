"""The New-run dialog asks for the base model and says at once what it is (issue 23: a new SDXL run got
the preset's hub id unasked, and failed offline at train time after ~25 s of the hub client's retries)."""

from __future__ import annotations

import time
from pathlib import Path

from textual.widgets import Input, Select

from tests.tui.conftest import HALFCELL, wait_until
from tuitrain.config import load_config
from tuitrain.tui.app import HomeScreen, TuitrainApp
from tuitrain.tui.base_model_field import complete_path, recent_models
from tuitrain.tui.new_run import NewRunScreen


def _status(app: TuitrainApp) -> str:
    return " ".join(str(app.screen.query_one("#new-base-status").render()).split())


async def test_the_base_model_is_asked_checked_at_once_and_remembered(workspace: Path, tmp_path: Path) -> None:
    app = TuitrainApp(workspace, image_protocol=HALFCELL)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        await pilot.press("n")
        assert isinstance(app.screen, NewRunScreen)
        app.screen.query_one("#new-preset", Select).value = "sdxl-lora"
        started = time.monotonic()
        # Blank: the preset's own hub id, which this offline machine has not cached: said before any retry.
        await wait_until(pilot, lambda: "not in the local hub cache" in _status(app), timeout=8)
        assert "stabilityai/stable-diffusion-xl-base-1.0" in _status(app)
        assert time.monotonic() - started < 8
        assert app.screen.query_one("#new-base-status").has_class("-bad")

        base = app.screen.query_one("#new-base", Input)
        base.value = str(tmp_path / "nothing-here.safetensors")
        await wait_until(pilot, lambda: "nothing-here.safetensors" in _status(app), timeout=8)
        assert "checking" not in _status(app)

        base.value = "someone/some-sdxl-model"
        name = app.screen.query_one("#new-name", Input)
        name.value = "faery"
        name.focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, HomeScreen))
    assert load_config(workspace / "faery" / "config.toml").model.base == "someone/some-sdxl-model"
    assert recent_models()[0] == "someone/some-sdxl-model"


async def test_recent_models_and_local_paths_complete(workspace: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "sd_xl_base_1.0.safetensors").write_bytes(b"")
    assert complete_path(f"{models}/sd_") == f"{models}/sd_xl_base_1.0.safetensors"
    assert complete_path(f"{tmp_path}/mod") == f"{models}/"

    from tuitrain.tui.base_model_field import remember_model

    remember_model("stabilityai/stable-diffusion-xl-base-1.0")
    app = TuitrainApp(workspace, image_protocol=HALFCELL)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        await pilot.press("n")
        base = app.screen.query_one("#new-base", Input)
        base.focus()
        await pilot.press(*"stab")
        await pilot.pause(0.1)
        await pilot.press("right")  # takes the suggestion
        assert base.value == "stabilityai/stable-diffusion-xl-base-1.0"


async def test_every_field_is_reachable_at_80x24(workspace: Path) -> None:
    """The base model's status can take a few lines: the form scrolls to whatever has the focus."""
    app = TuitrainApp(workspace, image_protocol=HALFCELL)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("n")
        await wait_until(pilot, lambda: "checking" not in _status(app) and bool(_status(app)))
        for wanted in ("new-preset", "new-base", "new-data", "new-cancel", "new-create"):
            await pilot.press("tab")
            await pilot.pause()
            focused = app.focused
            assert focused is not None and focused.id == wanted
            assert 0 <= focused.region.y and focused.region.bottom <= 24 and focused.region.height > 0, wanted
