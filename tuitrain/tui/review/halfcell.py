"""Half-cell pictures prepared off the event loop: the fast path for the default protocol.

textual-image 0.12's half-cell renderable builds a Rich Style per cell on the
event loop at every render (about 150 ms for one 160x48 screen here), which
alone breaks the 50 ms keypress budget. The same picture is built here as
rows of segments on the preview thread (neighbours ahead of time), each cell's
escape codes worked out once, so showing a picture costs the event loop only
Textual's own compositing. Kitty, Sixel and the unicode renderer still draw
through textual-image.
"""

from __future__ import annotations

from PIL import Image
from rich.color import Color, ColorType
from rich.color_triplet import ColorTriplet
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

UPPER_HALF = "\u2580"  # ▀: foreground paints the upper pixel, background the lower one


def _colour(rgb: tuple[int, int, int], cache: dict[tuple[int, int, int], Color]) -> Color:
    colour = cache.get(rgb)
    if colour is None:
        r, g, b = rgb
        colour = Color(f"#{r:02x}{g:02x}{b:02x}", ColorType.TRUECOLOR, triplet=ColorTriplet(r, g, b))
        cache[rgb] = colour
    return colour


def _style(upper: tuple[int, int, int], lower: tuple[int, int, int] | None, cache: dict) -> Style:  # type: ignore[type-arg]
    style = Style.from_color(_colour(upper, cache), _colour(lower, cache) if lower is not None else None)
    # Pre-compute the escape codes Rich would work out (and memoise) on the event loop.
    # Only for true colour: other colour systems let Rich downgrade the colours itself.
    codes = f"38;2;{upper[0]};{upper[1]};{upper[2]}"
    if lower is not None:
        codes += f";48;2;{lower[0]};{lower[1]};{lower[2]}"
    try:
        style._ansi = codes  # noqa: SLF001 - Rich's own memo of exactly this string
    except AttributeError:  # a Rich without the memo: it computes the codes itself, slower
        pass
    hash(style)  # Rich memoises the hash too; Textual's filters hash every style of every frame
    return style


Row = list[Segment]


def halfcell_rows(image: Image.Image, *, truecolor: bool = True) -> list[Row]:
    """One row of segments per two pixel rows; runs of identical cells share a segment.

    Plain lists, not Strips: a Strip carries seven caches, which the garbage
    collector would walk for every prepared picture.
    """
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    width, height = rgb.size
    data = rgb.tobytes()
    colours: dict[tuple[int, int, int], Color] = {}
    rows: list[Row] = []
    row_bytes = width * 3
    for top in range(0, height, 2):
        upper_row = data[top * row_bytes : (top + 1) * row_bytes]
        lower_row = data[(top + 1) * row_bytes : (top + 2) * row_bytes] if top + 1 < height else None
        segments: list[Segment] = []
        run_key: bytes | None = None
        run_length = 0
        run_style: Style | None = None
        for x in range(0, row_bytes, 3):
            key = upper_row[x : x + 3] + (lower_row[x : x + 3] if lower_row is not None else b"")
            if key == run_key:
                run_length += 1
                continue
            if run_style is not None:
                segments.append(Segment(UPPER_HALF * run_length, run_style))
            upper = (upper_row[x], upper_row[x + 1], upper_row[x + 2])
            lower = (lower_row[x], lower_row[x + 1], lower_row[x + 2]) if lower_row is not None else None
            run_style = _style(upper, lower, colours) if truecolor else _plain_style(upper, lower, colours)
            run_key, run_length = key, 1
        if run_style is not None:
            segments.append(Segment(UPPER_HALF * run_length, run_style))
        rows.append(segments)
    return rows


def _plain_style(upper: tuple[int, int, int], lower: tuple[int, int, int] | None, cache: dict) -> Style:  # type: ignore[type-arg]
    style = Style.from_color(_colour(upper, cache), _colour(lower, cache) if lower is not None else None)
    hash(style)
    return style


class HalfcellPicture(Widget):
    """Shows prepared rows at their own size (the parent centres it)."""

    DEFAULT_CSS = """
    HalfcellPicture { width: auto; height: auto; }
    """

    def __init__(self, *, classes: str | None = None) -> None:
        super().__init__(classes=classes)
        self._rows: list[Row] = []
        self._width = 0

    def set_rows(self, rows: list[Row], width: int) -> None:
        resized = (width, len(rows)) != (self._width, len(self._rows))
        self._rows, self._width = rows, width
        if resized:
            self.styles.width = width
            self.styles.height = len(rows)
        self.refresh(layout=resized)

    def render_line(self, y: int) -> Strip:
        if 0 <= y < len(self._rows):
            # A new Strip each time: Textual's caches on a strip end in a reference cycle,
            # and that cycle must not hold the prepared picture.
            return Strip(self._rows[y], self._width)
        return Strip.blank(self.size.width)
