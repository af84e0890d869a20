"""What a row's Input, Select or Switch looks like at rest, drawn by the row itself.

A form row makes its editing widget only when the cursor first comes to it (widgets.FieldRow):
until then the row draws the same cells that widget would, here. Why: the Training tab's ~56 rows
were ~150 widgets (an Input is one but a heavy one, a Select three), and Textual styles every
widget when a tab is built, and lays out and renders every one when the tab is first shown. A
tab's first showing took ~150-220 ms on the 2-core machine, two thirds of it those editors.

The colours come from the component classes of one hidden FaceStyles widget per screen, whose CSS
repeats Textual 8.2.8's own rules for a compact Input, Select and Switch (tests/config_editor/
test_faces.py compares the cells drawn here with the real widgets', so a Textual that draws them
differently fails there, not in a user's eyes). One widget, not each row: Textual styles every
component class of a widget when it is mounted, and eight per row cost more than the editors saved.
The label's colours are here too (a component class of each row was 15 of the 43 component classes
styled for the editor's first frame): as it is in the preset, differs from it (bold, in the warning
colour), in a section the training method does not use (muted), or both.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.color import Color as RichColor
from textual.content import Content
from textual.css.styles import RulesMap
from textual.scrollbar import ScrollBarRender
from textual.strip import Strip
from textual.style import Style
from textual.visual import RenderOptions, Visual
from textual.widget import Widget


SWITCH_WIDTH = 4  # Textual's Switch.get_content_width
SELECT_PROMPT = "Select"  # Textual's Select(prompt=...) default, shown while nothing is chosen

StyleOf = Callable[..., Style]  # Widget.get_visual_style: component class names -> a style


class FaceStyles(Widget):
    """Holds the colours of the drawn faces (never shown): rows draw with its get_visual_style."""

    COMPONENT_CLASSES = {"face--value", "face--placeholder", "face--prompt", "face--arrow", "face--switch",
                         "face--slider", "face--slider-on", "face--name", "face--name-changed", "face--name-unused",
                         "face--name-unused-changed"}
    DEFAULT_CSS = """
    FaceStyles {
        display: none;
        & > .face--value { background: $surface; color: $foreground; }
        & > .face--placeholder { background: $surface; color: $text-disabled; }
        & > .face--prompt { background: $surface; color: $foreground 50%; }
        & > .face--arrow { background: $surface; color: $foreground 50%; }
        & > .face--switch { background: $surface; }
        & > .face--slider { color: $panel; background: $panel-darken-2; }
        & > .face--slider-on { color: $success; background: $panel-darken-2; }
        & > .face--name-changed { color: $warning; text-style: bold; }
        & > .face--name-unused { color: $text-muted; }
        & > .face--name-unused-changed { color: $text-muted; text-style: bold; }
    }
    """


def input_face(text: str, placeholder: str, width: int, style_of: StyleOf) -> Content:
    """A compact Input without focus: its text from the start, cut at the width (an Input scrolls, it
    does not wrap), or its placeholder when empty. (No error tint: a row with a message has its editor.)"""
    if text:
        return Content(text).truncate(width, pad=True).stylize(style_of("face--value"))
    return Content(placeholder).truncate(width, pad=True).stylize(style_of("face--placeholder"))


def select_line(text: str, width: int, text_style: Style, arrow: str, arrow_style: Style,
                gap_style: Style | None = None) -> Content:
    """A closed select's line in `width` cells: the text (cut with an ellipsis, padded), a space, the arrow.
    Drawn by the row for a select it has not made yet and by the select itself (FormSelectCurrent)."""
    value = Content(text).truncate(max(width - 2, 0), ellipsis=True, pad=True)
    return Content.assemble((value.plain, text_style), " " if gap_style is None else (" ", gap_style),
                            (arrow, arrow_style))


def select_face(label: str | None, width: int, style_of: StyleOf) -> Content:
    """A compact Select, closed: the choice (or the prompt), a space, the arrow and the right padding."""
    text_style = style_of("face--prompt" if label is None else "face--value")
    line = select_line(SELECT_PROMPT if label is None else label, width - 1, text_style, "▼",
                       style_of("face--arrow"), style_of("face--value"))
    return Content.assemble(line, (" ", style_of("face--value")))


def switch_face(on: bool, style_of: StyleOf) -> Content:
    """A Switch at rest: the slider bar Textual draws (a ScrollBarRender half the switch wide)."""
    slider = style_of("face--slider-on" if on else "face--slider").rich_style
    segments = ScrollBarRender.render_bar(
        size=SWITCH_WIDTH, virtual_size=100, window_size=50, position=50 if on else 0, vertical=False,
        back_color=slider.bgcolor or RichColor.parse("#555555"), bar_color=slider.color or RichColor.parse("bright_magenta"),
    )
    background = style_of("face--switch")
    parts = [(segment.text, background + Style.from_rich_style(segment.style))
             for segment in segments.segments if segment.text.strip("\n") and segment.style is not None]
    return Content.assemble(*parts)


class RowLine(Visual):
    """One line drawn for the width it is given (a row's label and value face).

    Why not a Content made in render(): that needs the row's width, and Widget.size looks the row up
    in the compositor, which during a layout (when Textual renders to measure height) rebuilt its
    whole map for every row: a quarter of the time of opening the editor went there. A Visual is
    told its width when it is drawn, and its height is one line at any width.
    """

    def __init__(self, line: Callable[[int], Content]) -> None:
        self._line = line

    def render_strips(self, width: int, height: int | None, style: Style, options: RenderOptions) -> list[Strip]:
        return self._line(width).render_strips(width, height, style, options)

    def get_optimal_width(self, rules: RulesMap, container_width: int) -> int:
        return container_width

    def get_height(self, rules: RulesMap, width: int) -> int:
        return 1
