"""Lists of tables (data.concepts, sampling.prompts): one block of rows per item, add and remove."""

from __future__ import annotations

from typing import Any

from pydantic_core import PydanticUndefined
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Label

from tuitrain.config.fields import OptionInfo
from tuitrain.tui.config_editor.document import ConfigDocument
from tuitrain.tui.config_editor.paths import item_path
from tuitrain.tui.config_editor.widgets import FieldRow, widget_id


def new_item(item_options: list[OptionInfo]) -> dict[str, Any]:
    """A fresh item: required strings empty (the schema then names what is missing), defaults as declared."""
    item: dict[str, Any] = {}
    for option in item_options:
        if option.default is PydanticUndefined:
            item[option.name] = ""
        elif option.default is not None:
            item[option.name] = option.default
    return item


class ListEditor(Vertical):
    """Edits one list option; its rows are ordinary FieldRows at keys like data.concepts[0].path."""

    class Resized(Message):
        """An item was added or removed: the screen re-validates and refreshes."""

    DEFAULT_CSS = """
    ListEditor { height: auto; border-left: tall $primary 40%; padding: 0 0 0 1; margin: 0 0 1 0; }
    ListEditor .list-title { text-style: bold; height: 1; }
    ListEditor .item { height: auto; margin: 0 0 1 0; }
    ListEditor .item-head { height: 1; }
    ListEditor .item-head Label { width: 1fr; color: $text-muted; }
    ListEditor Button { height: 1; min-width: 10; border: none; margin: 0 1 0 0; }
    """

    def __init__(self, option: OptionInfo, item_options: list[OptionInfo], document: ConfigDocument) -> None:
        super().__init__(id=widget_id(option.path), classes=f"list {option.level}")
        self.option = option
        self.item_options = item_options
        self.document = document

    @property
    def items(self) -> list[dict[str, Any]]:
        """The list's tables; none while it holds something else (that shows as an extra row)."""
        value = self.document.get(self.option.path)
        return value if isinstance(value, list) and all(isinstance(item, dict) for item in value) else []

    def title_text(self) -> str:
        changed = "● " if self.document.differs_from_preset(self.option.path) else ""
        return f"{changed}{self.option.name} ({len(self.items)})"

    def refresh_title(self) -> None:
        """Keep the ● mark current as items are edited (only touches the label when it changes)."""
        titles = self.query(".list-title").results(Label)
        title = next(titles, None)
        if title is None:
            return  # between an add/remove's unmount and remount: the new title is composed current
        text = self.title_text()
        if str(title.content) != text:
            title.update(text)

    def compose(self) -> ComposeResult:
        yield Label(self.title_text(), classes="list-title")
        for index in range(len(self.items)):
            with Vertical(classes="item"):
                with Horizontal(classes="item-head"):
                    yield Label(f"{self.option.name}[{index}]")
                    yield Button("Remove", name=f"remove-{index}", classes="remove", compact=True)
                for option in self.item_options:
                    yield FieldRow(option, item_path(option.path, index), self.document)
        yield Button(f"Add to {self.option.name}", classes="add", compact=True)

    async def add_item(self) -> None:
        items = list(self.items)
        items.append(new_item(self.item_options))
        self.document.set(self.option.path, items)
        await self.recompose()
        self.post_message(self.Resized())

    async def remove_item(self, index: int) -> None:
        items = list(self.items)
        if 0 <= index < len(items):
            del items[index]
            for key in [k for k in self.document.field_errors if k.startswith(self.option.path + "[")]:
                del self.document.field_errors[key]  # indices shift: stale typing errors go
            self.document.set(self.option.path, items)
            await self.recompose()
            self.post_message(self.Resized())

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.has_class("add"):
            await self.add_item()
        elif event.button.name and event.button.name.startswith("remove-"):
            await self.remove_item(int(event.button.name.split("-", 1)[1]))
