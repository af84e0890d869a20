"""The review screen's parts: the picture, the info panel with its caption editor, the file list."""

from __future__ import annotations

from PIL import Image
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Vertical
from textual.markup import escape
from textual.message import Message
from textual.widget import Widget
from textual.widgets import OptionList, Static, TextArea
from textual.widgets.option_list import Option

from tuitrain.tui.image_protocol import cell_pixels, widget_class
from tuitrain.tui.review.halfcell import HalfcellPicture, Row, halfcell_rows
from tuitrain.tui.review.model import Flag, ReviewItem

SEVERITY_STYLE = {"error": "bold $error", "warning": "$warning", "info": "$text-muted"}
_MARK = {"error": "x", "warning": "!", "info": " "}


class ImagePreview(Container):
    """The current picture through textual-image, or a line saying why there is none."""

    DEFAULT_CSS = """
    ImagePreview { align: center middle; }
    ImagePreview > .picture { width: auto; height: auto; }
    ImagePreview > .message { width: 100%; height: 100%; content-align: center middle; color: $text-muted; }
    """

    def __init__(self, protocol: str, *, id: str | None = None, message_id: str = "preview-message") -> None:
        """message_id: the id of its message line (a screen with two previews keeps the ids unique)."""
        super().__init__(id=id)
        self.protocol = protocol
        self.message_id = message_id
        self._picture: Widget | None = None
        self.shown_key: tuple[object, ...] | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id=self.message_id, classes="message")

    @property
    def box(self) -> tuple[int, int]:
        """Pixels of room for the picture, in the unit previews are decoded in."""
        per_cell = cell_pixels(self.protocol)
        size = self.content_size
        return (max(1, size.width * per_cell[0]), max(1, size.height * per_cell[1]))

    def show_image(
        self, image: Image.Image, *, actual_size: bool, key: tuple[object, ...], rows: list[Row] | None = None
    ) -> None:
        """Show a picture: prepared half-cell rows when given, else through textual-image."""
        if self._picture is None:
            if self.protocol == "halfcell":
                self._picture = HalfcellPicture(classes="picture")
            else:
                self._picture = widget_class(self.protocol)(classes="picture")
            self.mount(self._picture)
        if isinstance(self._picture, HalfcellPicture):
            self._picture.set_rows(rows if rows is not None else halfcell_rows(image), image.width)
        else:
            per_cell = cell_pixels(self.protocol)
            if actual_size:  # one image pixel per screen pixel: give the widget exactly that many cells
                self._picture.styles.width = max(1, round(image.width / per_cell[0]))
                self._picture.styles.height = max(1, round(image.height / per_cell[1]))
            else:
                self._picture.styles.width = "auto"
                self._picture.styles.height = "auto"
            self._picture.image = image  # type: ignore[attr-defined]
        self._picture.display = True
        self.query_one(f"#{self.message_id}", Static).display = False
        self.shown_key = key

    def show_message(self, text: str) -> None:
        if self._picture is not None:
            self._picture.display = False
        message = self.query_one(f"#{self.message_id}", Static)
        message.update(text)
        message.display = True
        self.shown_key = None


class CaptionEditor(TextArea):
    """The caption, edited in place: Ctrl+S writes it to disk, Esc leaves it as it was."""

    BINDINGS = [
        # Not a priority binding: those run before the keys typed just before them reach the editor.
        Binding("ctrl+s", "save", "Save caption", id="caption.save"),
        Binding("escape", "cancel", "Cancel", id="caption.cancel"),
    ]

    class Saved(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class Cancelled(Message):
        pass

    def action_save(self) -> None:
        self.post_message(self.Saved(self.text))

    def action_cancel(self) -> None:
        self.post_message(self.Cancelled())


class InfoPanel(Vertical):
    """File name, size, bucket and crop, flags, and the caption (or its editor)."""

    DEFAULT_CSS = """
    InfoPanel { height: auto; max-height: 65%; }
    InfoPanel > #info-text { height: auto; }
    InfoPanel > #caption-text { height: auto; max-height: 12; margin-top: 1; }
    InfoPanel > CaptionEditor { height: 8; display: none; margin-top: 1; }
    InfoPanel.editing > #caption-text { display: none; }
    InfoPanel.editing > CaptionEditor { display: block; }
    """

    def compose(self) -> ComposeResult:
        yield Static(id="info-text")
        yield Static(id="caption-text")
        yield CaptionEditor(id="caption-editor", soft_wrap=True, show_line_numbers=False)

    def show(self, text: str, caption: str) -> None:
        """Both as Textual markup (theme variables allowed)."""
        self.query_one("#info-text", Static).update(text)
        self.query_one("#caption-text", Static).update(caption)

    @property
    def editing(self) -> bool:
        return self.has_class("editing")

    def start_editing(self, text: str) -> None:
        editor = self.query_one(CaptionEditor)
        editor.load_text(text)
        self.add_class("editing")
        editor.focus()
        editor.move_cursor(editor.document.end)

    def stop_editing(self) -> None:
        self.remove_class("editing")


class FileList(OptionList):
    """Every visible file, flagged ones marked; the review screen keeps the keys (no focus)."""

    can_focus = False
    DEFAULT_CSS = """
    FileList { text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def set_items(self, rows: list[tuple[ReviewItem, list[Flag]]], highlighted: int) -> None:
        self.set_options([Option(row_prompt(item, flags)) for item, flags in rows])
        if rows:
            self.highlighted = highlighted

    def replace_row(self, index: int, item: ReviewItem, flags: list[Flag]) -> None:
        self.replace_option_prompt_at_index(index, row_prompt(item, flags))


def worst(flags: list[Flag]) -> str | None:
    for severity in ("error", "warning"):
        if any(flag.severity == severity for flag in flags):
            return severity
    return None


def row_prompt(item: ReviewItem, flags: list[Flag]) -> str:
    """One list row as markup: a mark coloured by the worst flag, then the name."""
    severity = worst(flags)
    name = escape(item.name)
    if severity is None:
        return f"  {name}"
    return f"[{SEVERITY_STYLE[severity]}]{_MARK[severity]}[/] {name}"
