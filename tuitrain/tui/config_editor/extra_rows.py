"""A row for a key the form has no row for (see extras.py): rename it, edit its value, or delete it."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Input, Label, Static

from tuitrain.tui.config_editor.document import ConfigDocument
from tuitrain.tui.config_editor.extras import parse_value, suggestion, value_text
from tuitrain.tui.config_editor.values import ValueProblem
from tuitrain.tui.config_editor.widgets import FormInput, widget_id

EXTRAS_TITLE = "Not in the form: rename (edit the name, Enter), fix the value, or delete"


class ExtraKeyRow(Vertical):
    """`name = value` of one such key, both editable, with Rename-to-the-suggestion and Delete."""

    class Edited(Message):
        """The value was typed into the document (or a typing error noted)."""

        def __init__(self, row: ExtraKeyRow) -> None:
            super().__init__()
            self.row = row

    class Fix(Message):
        """Rename the key to `new_path`, or delete it (`new_path` None): the screen rebuilds the form."""

        def __init__(self, row: ExtraKeyRow, new_path: str | None) -> None:
            super().__init__()
            self.row = row
            self.new_path = new_path

    DEFAULT_CSS = """
    ExtraKeyRow { height: auto; }
    ExtraKeyRow > Horizontal { height: auto; }
    ExtraKeyRow .extra-key { width: 26; }
    ExtraKeyRow .equals { width: 3; height: 1; }
    ExtraKeyRow .extra-value { width: 1fr; }
    ExtraKeyRow Button { height: 1; min-width: 8; border: none; margin: 0 0 0 1; }
    ExtraKeyRow .message { height: auto; color: $error; padding: 0 0 0 29; }
    """

    def __init__(self, path: str, document: ConfigDocument) -> None:
        super().__init__(id="x" + widget_id(path), classes="extra")
        self.path = path
        self.document = document
        self.suggestion = suggestion(path)
        self._shown: str | None = None

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield FormInput(self.path, compact=True, select_on_focus=False, classes="extra-key")
            yield Label(" = ", classes="equals")
            yield FormInput(value_text(self.document.get(self.path)), compact=True, select_on_focus=False,
                            classes="extra-value editor")
            if self.suggestion:
                yield Button(f"Rename to {self.suggestion}", compact=True, classes="rename")
            yield Button("Delete", compact=True, classes="delete")
        yield Static("", classes="message", markup=False)

    @property
    def name_input(self) -> Input:
        return self.query_one(".extra-key", Input)

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        if not event.input.has_class("extra-value"):
            return  # the name is applied on Enter: a half-typed name must not move the value
        try:
            value = parse_value(event.value)
        except ValueProblem as exc:
            self.document.field_errors[self.path] = str(exc)
        else:
            self.document.set(self.path, value)
        self.post_message(self.Edited(self))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.has_class("extra-key") and event.value.strip() != self.path:
            self.post_message(self.Fix(self, event.value.strip()))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.post_message(self.Fix(self, self.suggestion if event.button.has_class("rename") else None))

    def show(self, problem: str) -> None:
        """The typing error of the value, else what the whole-config check says about the key."""
        message = self.document.field_errors.get(self.path) or problem
        if message != self._shown:
            self._shown = message
            self.query_one(".message", Static).update(message)
            self.query_one(".extra-value", Input).set_class(bool(message), "-invalid")
