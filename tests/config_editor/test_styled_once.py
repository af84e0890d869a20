"""The form's widgets are styled once, when mounted (issue 23: opening the config editor).

A class change applies the whole stylesheet to a widget at once, mounted or not, and mounting
applies it again. Textual's Input, Select and footer keys change classes in __init__ or when
their `compact` binding arrives, and the form marked hidden rows after mounting them: opening the
editor made ~110 such passes, 0.09 s of its 0.53 s (cProfile). The form now gives each widget
its classes before it is mounted.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.dom import DOMNode

from tests.config_editor.conftest import SIZE, editor, wait_for
from tuitrain.tui.config_editor.app import ConfigEditorApp
from tuitrain.tui.config_editor.tab_forms import TabForm

OURS = {"FieldRow", "FormInput", "FormSelect", "FormSelectCurrent", "SelectOverlay"}


async def test_opening_the_editor_styles_no_form_widget_or_footer_key_twice(run_config: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    passes: list[str] = []
    update_node_styles = DOMNode.update_node_styles

    def recording(self: DOMNode, animate: bool = True) -> None:
        name = type(self).__name__
        bound_key = name == "FooterKey" and "-command-palette" not in self.classes
        if name in OURS or bound_key:
            passes.append(f"{name}{'' if self.is_mounted else ' (not mounted)'}")
        update_node_styles(self, animate)

    monkeypatch.setattr(DOMNode, "update_node_styles", recording)
    app = ConfigEditorApp(run_config)
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await wait_for(pilot, lambda: all(form.ready.is_set() for form in screen.query(TabForm)))
        await pilot.pause(0.3)
        assert not [entry for entry in passes if "not mounted" in entry or entry.startswith(("SelectOverlay", "Footer"))]
        # what is left is what should restyle: the focused field, and rows whose value differs from the preset
        assert len(passes) <= 5, passes  # 370 passes before
        await pilot.press("alt+3")
        await pilot.pause(0.3)
        assert all("not mounted" not in entry for entry in passes)
