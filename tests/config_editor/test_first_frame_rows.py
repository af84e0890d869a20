"""The first frame leaves out the first tab's rows that the family hides ([flux], [sd3] ... rows of an
SDXL config: half the model tab), and mounts them right after it (issue 23: the config editor's first
frame). Once mounted they sit where the schema lists them, hidden, and show when the family asks; a
section with nothing to show hides its title too. The status line and side panel have their text in
the first frame (set from on_mount, it came one frame after the form)."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Select, Static

from tests.config_editor.conftest import SIZE, editor, wait_for
from tuitrain.config.options import iter_options
from tuitrain.tui.config_editor.app import ConfigEditorApp
from tuitrain.tui.config_editor.screen import ConfigEditorScreen
from tuitrain.tui.config_editor.values import widget_kind
from tuitrain.tui.config_editor.widgets import FieldRow


async def test_hidden_rows_come_after_the_first_frame_in_their_place(run_config: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    at_first_frame: list[str] = []
    panels: dict[str, str] = {}
    on_mount = ConfigEditorScreen.on_mount

    def counting(self: ConfigEditorScreen) -> None:  # on_mount runs once the composed rows are mounted
        at_first_frame.extend(row.path for row in self.query(FieldRow))
        panels.update({name: str(self.query_one(f"#{name}", Static).content) for name in ("status", "help", "derived")})
        on_mount(self)

    monkeypatch.setattr(ConfigEditorScreen, "on_mount", counting)
    model_rows = [o.path for o in iter_options() if o.group == "model" and widget_kind(o) != "list"]
    other_families = [o.path for o in iter_options() if o.group == "model" and o.family not in (None, "sdxl")]
    assert len(other_families) >= 10

    app = ConfigEditorApp(run_config)  # an SDXL LoRA config
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = editor(app)
        assert at_first_frame and not set(other_families) & set(at_first_frame)  # held back from the first frame
        assert "model.family" in at_first_frame and "model.base" in at_first_frame
        assert "preset sdxl-lora" in panels["status"] and "model.family" in panels["help"]  # before on_mount ran
        assert "VRAM" in panels["derived"] and "Learning rate" in panels["derived"]

        tab = screen.query_one("#tab-model")
        assert [row.path for row in tab.query(FieldRow)] == model_rows  # mounted since, in the schema's order
        assert all(not screen.row(path).display or screen.row(path).has_class("other-objective")
                   for path in other_families)
        assert not any(screen.row(path).has_class("other-objective") for path in model_rows
                       if path not in other_families)

        flux_section = screen.query_one("#sec-flux-model")
        assert not flux_section.display or flux_section.has_class("other-objective")  # no [flux] title over nothing

        family = screen.row("model.family").editor
        assert isinstance(family, Select)
        family.value = "flux"
        await wait_for(pilot, lambda: not screen.row("flux.guidance").has_class("other-objective"))
        assert screen.row("sd3.drop_t5").has_class("other-objective")
        assert not flux_section.has_class("other-objective")
        assert screen.query_one("#sec-sd3-model").has_class("other-objective")
