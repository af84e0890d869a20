"""One form row per option, with the widget its type calls for (made when the row is first focused).

Rows are generated from OptionInfo, never written per option: a new schema
option shows up in the form with no UI code.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from textual import events
from textual.app import ComposeResult
from textual.message import Message
from textual.suggester import Suggester
from textual.widget import Widget
from textual.content import Content
from textual.widgets import Input, Select, Static, Switch

from tuitrain.config.fields import OptionInfo
from tuitrain.tui.before_mount import compact_before_mount
from tuitrain.tui.config_editor.document import ConfigDocument
from tuitrain.tui.config_editor.faces import FaceStyles, RowLine, input_face, select_face, switch_face
from tuitrain.tui.config_editor.form_select import FormSelect
from tuitrain.tui.config_editor.values import (
    ValueProblem,
    format_value,
    is_optional,
    parse_text,
    path_warning,
    widget_kind,
)


# What alt+1..8 arrive as in most terminals (tmux included): they send ESC + digit, which
# Textual 8 reads as macOS's Option+digit characters (textual/_ansi_sequences.py). Only
# terminals with the kitty keyboard protocol send a real alt+digit. So the screen binds both
# names, and those eight characters cannot be typed into the form (they are rare in a config).
ALT_DIGIT_CHARACTERS = ("inverted_exclamation_mark", "trade_mark_sign", "pound_sign", "cent_sign", "infinity",
                        "section_sign", "pilcrow_sign", "bullet")


class FormInput(Input):
    """A text field of the form that leaves the alt+digit characters to the tab keys.

    Textual drops a screen's binding for any key the focused widget says it consumes
    (Screen._binding_chain asks check_consume_key), and an Input consumes every printable
    character: without this, alt+3 in a text field typed '£' into the value.
    """

    def __init__(self, *args: Any, compact: bool = False, classes: str | None = None, **kwargs: Any) -> None:
        # "-valid" from the start: with no validators Input sets it when its value is first set, in __init__,
        # and that class change was a stylesheet pass on a field not yet mounted (see tui/before_mount.py).
        super().__init__(*args, classes=f"{classes or ''} -valid", **kwargs)
        if compact:
            compact_before_mount(self, Input.compact)

    def check_consume_key(self, key: str, character: str | None) -> bool:
        return key not in ALT_DIGIT_CHARACTERS and super().check_consume_key(key, character)


LABEL_WIDTH = 26  # columns of a row's label, its mark and a space included


def widget_id(path: str) -> str:
    """A DOM id for a config key ('data.concepts[0].path' -> 'f-data-concepts-0-path')."""
    return "f-" + path.replace(".", "-").replace("[", "-").replace("]", "")


class PathSuggester(Suggester):
    """Completes file and folder names relative to the config's folder, as a shell would."""

    def __init__(self, base_dir: Path) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.base_dir = base_dir

    async def get_suggestion(self, value: str) -> str | None:
        if not value:
            return None
        head, _, stem = value.rpartition("/")
        folder_text = head + "/" if head or value.startswith("/") else ""
        folder = Path(os.path.expanduser(folder_text or "."))
        folder = folder if folder.is_absolute() else self.base_dir / folder
        try:
            names = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir())
        except OSError:
            return None
        for name in names:
            if name.startswith(stem) and not name.startswith(".") and name != stem:
                return folder_text + name
        return None


class FieldRow(Widget, can_focus=True):
    """Label, value and message line of one option at one key.

    The row draws its value as the editing widget would (faces.py) and makes that widget (an Input, a
    Select or a Switch) only when the cursor first comes to it: then the row hands the focus on and
    steps out of the focus chain. Most rows of a tab are never edited, so a tab is built, laid out and
    first shown with one widget per row instead of two to four.
    """

    class Edited(Message):
        """The row wrote a new value (or a typing error) into the document.

        `typing` is true for keystrokes in a text field: the screen then checks the whole
        config once typing pauses, not on every key (switches and selects check at once).
        """

        def __init__(self, row: FieldRow, typing: bool = False) -> None:
            super().__init__()
            self.row = row
            self.typing = typing

    # The row draws its label itself (render) and holds the editor and, once there is one, the message line:
    # the label was a widget of its own, and a Vertical holding a Horizontal before that. Of the ~240 widgets of
    # the Training tab, one in four was a label, each styled when the tab is built and laid out when it is shown.
    DEFAULT_CSS = f"""
    FieldRow {{ height: auto; }}
    FieldRow > .editor {{ margin: 0 0 0 {LABEL_WIDTH}; }}
    FieldRow > Input, FieldRow > Select {{ width: 1fr; }}
    FieldRow > Switch {{ height: 1; border: none; padding: 0; width: auto; }}
    FieldRow > Switch:focus {{ border: none; background-tint: $foreground 10%; }}
    FieldRow > .message {{ height: auto; color: $error; padding: 0 0 0 {LABEL_WIDTH}; display: none; }}
    FieldRow > .message.warning {{ color: $warning; }}
    FieldRow > .message.shown {{ display: block; }}
    """

    def __init__(self, option: OptionInfo, path: str, document: ConfigDocument, *, with_editor: bool = False) -> None:
        changed = document.row_differs_from_preset(path)
        super().__init__(id=widget_id(path), classes=f"field {option.level}{' changed' if changed else ''}")
        self.option = option
        self.path = path
        self.document = document
        self.kind = widget_kind(option)
        # What show() last displayed; a row is composed showing its mark and no message, so the first show()
        # of a row with nothing to add touches nothing (it re-rendered every row of a tab once it was built).
        self._shown: tuple[bool, str, str] = (changed, "", "")
        self._editor: Widget | None = None  # made when the cursor first comes to the row (or with_editor)
        self._editor_mounted: Awaitable[None] | None = None
        self._message: Static | None = None  # mounted with the first message
        self._face_styles: FaceStyles | None = None  # the screen's, looked up once
        if with_editor:  # composed with the row: the field the editor opens on
            self._editor = self._make_editor()
            self.can_focus = False

    def compose(self) -> ComposeResult:
        if self._editor is not None:
            yield self._editor

    def render(self) -> Content | RowLine:
        """The label in the label column and, until the row has its editor, the value as the editor draws it."""
        if self._editor is not None:
            return self._drawn_label()  # the editor sits in the rest of the row (its margin leaves the label column free)
        return RowLine(self._drawn_line)

    def _drawn_label(self) -> Content:
        label = Content(self._label_text()).truncate(LABEL_WIDTH - 1, ellipsis=True)  # the few longer names
        unused = self.parent is not None and self.parent.has_class("unused")  # the section (screen.update_sections)
        name = "face--name" + ("-unused" if unused else "") + ("-changed" if self.has_class("changed") else "")
        return Content.assemble((label.plain, self.face_styles().get_visual_style(name)))

    def face_styles(self) -> FaceStyles:
        """The screen's FaceStyles, looked up once (faces.py says why there is one per screen)."""
        if self._face_styles is None:
            self._face_styles = self.screen.query_one(FaceStyles)
        return self._face_styles

    def _drawn_line(self, width: int) -> Content:
        name = self._drawn_label()
        return Content.assemble(name.pad_right(LABEL_WIDTH - name.cell_length), self.face(width - LABEL_WIDTH))

    def face(self, width: int) -> Content:
        """The value as the row's editor would show it, unfocused, in `width` cells (faces.py)."""
        value = self.document.get(self.path)
        if width <= 0:
            return Content("")
        style_of = self.face_styles().get_visual_style
        if self.kind == "switch":
            return switch_face(bool(value), style_of)
        if self.kind == "select":
            label = str(value) if value in (self.option.choices or ()) else None
            return select_face(label, width, style_of)
        return input_face(format_value(value), self._placeholder(), width, style_of)

    def _placeholder(self) -> str:
        return "unset" if is_optional(self.option) else ""

    def _make_editor(self) -> Widget:
        value = self.document.get(self.path)
        invalid = "-invalid" if self._shown[1] else ""  # a row with a message has its editor made now
        if self.kind == "switch":
            return Switch(bool(value), animate=False, classes=f"editor {invalid}")
        if self.kind == "select":
            options = [(str(c), c) for c in self.option.choices or ()]
            valid = value in (self.option.choices or ())
            # A value that is not a choice (a typo in the file) shows as blank, with its error:
            # without a blank, Select would quietly pick the first choice in its place.
            blank = is_optional(self.option) or not valid
            return FormSelect(options, value=value if valid else Select.NULL, allow_blank=blank, compact=True,
                              classes=f"editor {invalid}")
        suggester = PathSuggester(self.document.base_dir) if self.kind == "path" else None
        return FormInput(format_value(value), placeholder=self._placeholder(), suggester=suggester, compact=True,
                         select_on_focus=False, classes=f"editor {invalid}")

    def _label_text(self) -> str:
        mark = "● " if self.changed else "  "
        return f"{mark}{self.option.name}"

    @property
    def changed(self) -> bool:
        """Differs from the preset; list items are compared as a whole list (see ListEditor)."""
        return self.document.row_differs_from_preset(self.path)

    @property
    def has_editor(self) -> bool:
        """The row has made its editing widget (the cursor has been here)."""
        return self._editor is not None

    @property
    def editor(self) -> Widget:
        """The value's widget, made and mounted on first use (`await open_editor()` waits for the mount)."""
        if self._editor is None:
            self._editor = self._make_editor()
            self.can_focus = False  # the editor takes the row's place in the focus chain
            self._editor_mounted = self.mount(self._editor)  # a message line, if any, is mounted after it
            self.refresh()  # the label only, from now on
        return self._editor

    async def open_editor(self) -> Widget:
        """The value's widget, mounted: what the cursor goes to on this row."""
        editor = self.editor
        if self._editor_mounted is not None:
            await self._editor_mounted
        return editor

    async def _on_focus(self, event: events.Focus) -> None:
        """The cursor came to the row (a click, or a focus change not made by the screen's keys): hand it on."""
        editor = await self.open_editor()
        if self.has_focus:
            self.screen.set_focus(editor)

    async def on_click(self, event: events.Click) -> None:
        """A click on the drawn value acts as on the widget: a select opens, a switch flips."""
        if event.widget is not self or event.x < LABEL_WIDTH:
            return  # the editor had the click itself, or the label was clicked
        editor = await self.open_editor()
        if isinstance(editor, Select):
            editor.expanded = True
        elif isinstance(editor, Switch):
            editor.toggle()

    def _message_line(self) -> Static:
        if self._message is None:
            # The message goes on the line under the editor: a row with a message has its editor (which shows
            # the error tint), so the drawn face never needs one.
            editor = self.editor
            self._message = Static("", classes="message", markup=False)
            self.mount(self._message, after=editor)
        return self._message

    # --- edits -------------------------------------------------------------------------

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        try:
            value = parse_text(self.option, event.value)
        except ValueProblem as exc:
            self.document.field_errors[self.path] = str(exc)
        else:
            if self.path not in self.document.field_errors and value == self.document.get(self.path):
                # Nothing to take in: the document holds this value (an Input says Changed once when it
                # mounts; a tab built after the first frame would otherwise take the help panel).
                return
            self.document.set(self.path, value)
        self.post_message(self.Edited(self, typing=True))

    def on_switch_changed(self, event: Switch.Changed) -> None:
        event.stop()
        self.document.set(self.path, event.value)
        self.post_message(self.Edited(self))

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        value: Any = None if event.value is Select.NULL else event.value
        if self.document.get(self.path) != value:
            self.document.set(self.path, value)
            self.post_message(self.Edited(self))

    # --- display -----------------------------------------------------------------------

    def show(self, schema_problem: str = "") -> None:
        """Refresh the preset mark and the message: typing error, schema problem, or path warning.

        Widgets are touched only when what they show changes: updating ~90 rows' labels on
        every keystroke made Textual re-lay-out the form each time.
        """
        changed = self.changed
        message = self.document.field_errors.get(self.path) or schema_problem
        warning = ""
        if not message and self.kind == "path":
            warning = path_warning(self.option, str(self.document.get(self.path) or ""), self.document.base_dir)
        state = (changed, message, warning)
        if state == self._shown:
            return
        self._shown = state
        self.set_class(changed, "changed")
        self.refresh()  # the label and its mark (and the value's error tint, while the row draws it)
        if message or warning or self._message is not None:
            line = self._message_line()
            line.update(message or warning)
            line.set_class(bool(message or warning), "shown")
            line.set_class(bool(warning) and not message, "warning")
        if self._editor is not None:
            self._editor.set_class(bool(message), "-invalid")

    def reload(self) -> None:
        """Put the document's value back into the widget (after a reset or a preset load)."""
        value = self.document.get(self.path)
        editor = self._editor
        if editor is None:
            self.refresh()  # the row draws the document's value
            return
        with editor.prevent(Input.Changed, Switch.Changed, Select.Changed):
            if isinstance(editor, Switch):
                editor.value = bool(value)
            elif isinstance(editor, Select):
                editor.value = value if value in (self.option.choices or ()) else Select.NULL
            elif isinstance(editor, Input):
                editor.value = format_value(value)
