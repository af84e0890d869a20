"""What a row's Input, Select or Switch looks like at rest, drawn by the row itself.

A form row makes its editing widget only when the cursor first comes to it (widgets.FieldRow):
until then the row draws the same cells that widget would, here. Why: the Training tab's ~56 rows
were ~150 widgets (an Input is one but a heavy one, a Select three), and Textual styles every
widget when a tab is built, and lays out and renders every one when the tab is first shown. A
tab's first showing took ~150-220 ms on the 2-core machine, two thirds of it those editors.

The colours come from the row's component classes, whose CSS repeats Textual 8.2.8's own rules for
a compact Input, Select and Switch (tests/config_editor/test_faces.py compares the cells drawn here
with the real widgets', so a Textual that draws them differently fails there, not in a user's eyes).
"""

from __future__ import annotations

from collections.abc import Callable

from rich.color import Color as RichColor
from textual.content import Content
from textual.scrollbar import ScrollBarRender
from textual.style import Style

# The component classes a row draws its face with (FieldRow.COMPONENT_CLASSES), and their CSS.
FACE_CLASSES = {"field-row--value", "field-row--placeholder", "field-row--prompt",
                "field-row--arrow", "field-row--switch", "field-row--slider", "field-row--slider-on"}
FACE_CSS = """
FieldRow > .field-row--value { background: $surface; color: $foreground; }
FieldRow > .field-row--placeholder { background: $surface; color: $text-disabled; }
FieldRow > .field-row--prompt { background: $surface; color: $foreground 50%; }
FieldRow > .field-row--arrow { background: $surface; color: $foreground 50%; }
FieldRow > .field-row--switch { background: $surface; }
FieldRow > .field-row--slider { color: $panel; background: $panel-darken-2; }
FieldRow > .field-row--slider-on { color: $success; background: $panel-darken-2; }
"""

SWITCH_WIDTH = 4  # Textual's Switch.get_content_width
SELECT_PROMPT = "Select"  # Textual's Select(prompt=...) default, shown while nothing is chosen

StyleOf = Callable[..., Style]  # Widget.get_visual_style: component class names -> a style


def input_face(text: str, placeholder: str, width: int, style_of: StyleOf) -> Content:
    """A compact Input without focus: its text from the start, cut at the width (an Input scrolls, it
    does not wrap), or its placeholder when empty. (No error tint: a row with a message has its editor.)"""
    if text:
        return Content(text).truncate(width, pad=True).stylize(style_of("field-row--value"))
    return Content(placeholder).truncate(width, pad=True).stylize(style_of("field-row--placeholder"))


def select_face(label: str | None, width: int, style_of: StyleOf) -> Content:
    """A compact Select, closed: the choice (or the prompt), a space, the arrow and the right padding."""
    value_width = max(width - 3, 0)
    if label is None:
        value = Content(SELECT_PROMPT).truncate(value_width, ellipsis=True, pad=True).stylize(
            style_of("field-row--prompt"))
    else:
        value = Content(label).truncate(value_width, ellipsis=True, pad=True).stylize(style_of("field-row--value"))
    return Content.assemble(value, (" ", style_of("field-row--value")), ("▼", style_of("field-row--arrow")),
                            (" ", style_of("field-row--value")))


def switch_face(on: bool, style_of: StyleOf) -> Content:
    """A Switch at rest: the slider bar Textual draws (a ScrollBarRender half the switch wide)."""
    slider = style_of("field-row--slider-on" if on else "field-row--slider").rich_style
    segments = ScrollBarRender.render_bar(
        size=SWITCH_WIDTH, virtual_size=100, window_size=50, position=50 if on else 0, vertical=False,
        back_color=slider.bgcolor or RichColor.parse("#555555"), bar_color=slider.color or RichColor.parse("bright_magenta"),
    )
    background = style_of("field-row--switch")
    parts = [(segment.text, background + Style.from_rich_style(segment.style))
             for segment in segments.segments if segment.text.strip("\n") and segment.style is not None]
    return Content.assemble(*parts)
