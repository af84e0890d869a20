"""Textual's Select with its closed face drawn by one widget instead of four.

Textual's SelectCurrent is a Horizontal holding three Statics (the value, a down arrow and a hidden
up arrow). The config editor's Training tab has 13 selects, so 39 of its ~240 widgets were those
Statics, each styled when the tab is built and laid out whenever it is shown. `FormSelectCurrent`
draws the same cells itself: the value, a space and the arrow, in the colours Textual's CSS gives
them. Everything else (the option overlay, keys, mouse, `value`, `Select.Changed`) is Textual's
Select, unchanged: subclassed, not rewritten, because the overlay's keyboard and type-to-search
behaviour is what users know from every other Textual app.
"""

from __future__ import annotations

from typing import Any

from rich.console import RenderableType
from textual.app import ComposeResult
from textual.content import Content
from textual.widgets import OptionList, Select
from textual.widgets._select import NoSelection, SelectCurrent, SelectOverlay

from tuitrain.tui.before_mount import compact_before_mount
from tuitrain.tui.config_editor.faces import select_line


class FormSelectCurrent(SelectCurrent):
    """The closed select: value and arrow drawn as one line, no child widgets."""

    COMPONENT_CLASSES = {"form-select--value", "form-select--placeholder", "form-select--arrow"}
    # The colours of Textual's SelectCurrent children (Static#label, .arrow), given to the parts drawn here.
    DEFAULT_CSS = """
    FormSelectCurrent {
        height: 1;
        & > .form-select--value { color: $foreground; }
        & > .form-select--placeholder { color: $foreground 50%; }
        & > .form-select--arrow { color: $foreground 50%; }
    }
    """

    def compose(self) -> ComposeResult:
        return iter(())

    def _watch_has_value(self, has_value: bool) -> None:
        self.refresh()  # the value is drawn here: no -has-value class (Textual's face uses it for its label Static)

    def update(self, label: RenderableType | NoSelection) -> None:
        self.label = label
        self.has_value = label is not Select.NULL
        self.refresh()

    def render(self) -> Content:
        placeholder = isinstance(self.label, NoSelection)
        text = self.placeholder if placeholder else str(self.label)
        expanded = isinstance(self.parent, Select) and self.parent.expanded
        value_style = self.get_visual_style("form-select--value" if self.has_value else "form-select--placeholder")
        return select_line(text, self.content_size.width, value_style, "▲" if expanded else "▼",
                           self.get_visual_style("form-select--arrow"))


class FormSelect(Select[Any]):
    """A Select whose closed face is a FormSelectCurrent."""

    def __init__(self, *args: Any, compact: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if compact:
            compact_before_mount(self, Select.compact)

    def compose(self) -> ComposeResult:
        yield FormSelectCurrent(self.prompt)
        overlay = SelectOverlay(type_to_search=self._type_to_search)
        if self.compact:  # as the binding below will set it, without a class change once mounted
            compact_before_mount(overlay, OptionList.compact)
        yield overlay.data_bind(compact=Select.compact)

    def _watch_expanded(self, expanded: bool) -> None:
        super()._watch_expanded(expanded)
        for current in self.query(FormSelectCurrent):
            current.refresh()  # the arrow turns
