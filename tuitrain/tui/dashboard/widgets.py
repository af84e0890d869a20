"""The dashboard's own widgets: the loss plot and the sample cards.

Both are fed by the screen on its timer; neither reads the model itself, so
neither is ever redrawn per event.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from PIL import Image
from rich.console import RenderableType
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Static
from textual_plotext import PlotextPlot

from tuitrain.dataset.decode import SUPPORTED_FORMATS
from tuitrain.tui.dashboard.model import Sample, SampleRound
from tuitrain.tui.dashboard.series import Series


@dataclass(frozen=True)
class PlotData:
    """Points to draw: the raw loss as a min/max envelope and its smoothed curve."""

    x: list[float]
    low: list[float]
    high: list[float]
    smooth: list[float]
    end: float = 0.0  # the last x (each group's x is where it starts)
    # The eval loss (trainer/evaluation.py) at its steps: held-out images, and the training subset (NaN: none).
    eval_x: tuple[float, ...] = ()
    eval_held: tuple[float, ...] = ()
    eval_train: tuple[float, ...] = ()

    @classmethod
    def from_series(cls, series: Series, columns: int,
                    evals: tuple[list[float], list[float], list[float]] | None = None) -> PlotData:
        view = series.view(columns)
        ex, held, train = evals or ([], [], [])
        return cls(view.x, view.low, view.high, series.smoothed(columns), series.last_x or 0.0,
                   tuple(ex), tuple(held), tuple(train))


def envelope(data: PlotData) -> tuple[list[float], list[float]]:
    """A zig-zag through each group's min and max: one line that fills the raw loss's band."""
    xs: list[float] = []
    ys: list[float] = []
    for i, (x, lo, hi) in enumerate(zip(data.x, data.low, data.high)):
        first, second = (lo, hi) if i % 2 == 0 else (hi, lo)
        xs += [x, x]
        ys += [first, second]
    return xs, ys


def step_ticks(first: float, last: float, count: int) -> list[int]:
    """Whole, round step numbers for the x axis (plotext would label 1.0, 50.5, ...)."""
    span = max(1.0, last - first)
    raw = span / max(1, count)
    magnitude = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    start = math.ceil(first / step) * step
    ticks = list(range(int(start), int(last) + 1, int(step)))
    if not ticks or ticks[0] - first >= step / 2:
        ticks.insert(0, int(first))
    if last - ticks[-1] >= step / 2:
        ticks.append(int(last))
    return ticks


class LossPlot(PlotextPlot):
    """Raw and smoothed loss; linear or log scale. Its cost depends on its width, not on the run."""

    DEFAULT_CSS = """
    LossPlot { width: 1fr; height: 1fr; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.data: PlotData | None = None
        self.log_scale = False
        self.colours: tuple[tuple[int, int, int], tuple[int, int, int]] = ((120, 120, 120), (1, 120, 212))
        self.eval_colours: tuple[tuple[int, int, int], tuple[int, int, int]] = ((254, 166, 43), (78, 191, 113))
        self.draws = 0  # how many times the plot was built (tests and the benchmark read it)

    def columns(self) -> int:
        """Groups to draw: one per column (the raw envelope uses both braille dots of each)."""
        return max(10, self.size.width - 10)

    def show(self, data: PlotData, log_scale: bool) -> None:
        self.data, self.log_scale = data, log_scale
        usable = not data.low or min(data.low) > 0
        if log_scale and not usable:
            self.border_subtitle = "linear (values ≤ 0)"
        else:
            self.border_subtitle = "log" if log_scale else "linear"
        self.refresh()

    def render(self) -> RenderableType:
        data = self.data
        if data is None or not data.x:
            return Text("no steps yet", style="dim", justify="center")
        plt = self.plt
        plt.clear_figure()
        log = self.log_scale and min(data.low) > 0 and all(v > 0 for v in data.eval_held)
        raw, smooth = self.colours
        if len(data.x) > 1:
            xs, ys = envelope(data)
            plt.plot(xs, ys, marker="braille", color=raw)
            plt.plot(data.x, data.smooth, marker="braille", color=smooth)
        else:
            plt.scatter(data.x, data.smooth, marker="braille", color=smooth)
        if data.eval_x:  # the second curve: the eval loss at each save, and the training images' beside it
            held, train = self.eval_colours
            trained = [(x, y) for x, y in zip(data.eval_x, data.eval_train) if math.isfinite(y) and (y > 0 or not log)]
            if trained:
                plt.plot([x for x, _ in trained], [y for _, y in trained], marker="•", color=train, label="eval train")
            plt.plot(list(data.eval_x), list(data.eval_held), marker="●", color=held, label="eval held-out")
        if log:
            plt.yscale("log")
        ticks = step_ticks(data.x[0], max(data.end, data.x[-1]), max(2, self.size.width // 16))
        plt.xticks(ticks, [str(t) for t in ticks])
        self.draws += 1
        return super().render()


class SampleCard(Vertical):
    """One sample image and, under it, its prompt, step and epoch."""

    DEFAULT_CSS = """
    SampleCard { width: 1fr; height: 1fr; padding: 0 1 0 0; align-horizontal: center; }
    SampleCard > .picture { width: auto; height: 1fr; max-width: 100%; }
    SampleCard > .caption { height: 2; color: $text-muted; }
    """

    def __init__(self, image_class: type[Widget], **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._image_class = image_class
        self.sample: Sample | None = None
        self._problem = ""

    def compose(self) -> ComposeResult:
        yield self._image_class(classes="picture")
        yield Static("", classes="caption")

    def show(self, sample: Sample | None, picture: Image.Image | None, problem: str = "") -> None:
        self.sample = sample
        self._problem = problem
        picture_widget = self.query_one(".picture")
        picture_widget.image = picture  # type: ignore[attr-defined]
        self._show_caption()

    def _show_caption(self) -> None:
        caption = self.query_one(".caption", Static)
        sample = self.sample
        if sample is None:
            caption.update("")
            return
        text = Text.assemble((f"#{sample.index} ", "bold"), f"step {sample.step} · epoch {sample.epoch}\n",
                             (self._problem or sample.prompt or "(empty prompt)", "italic"))
        text.truncate(max(10, 2 * (self.size.width or 40)), overflow="ellipsis")
        caption.update(text, layout=False)

    def on_resize(self) -> None:
        """Cut the caption for the card's new width: cards widen when fewer fit beside each other, and a
        caption cut for the width the card had when its picture arrived stayed cut ('epoch…', no prompt)."""
        self._show_caption()


class SamplesPanel(Vertical):
    """The samples of one sampling round, one card per prompt, as many as fit side by side."""

    DEFAULT_CSS = """
    SamplesPanel > #samples-head { height: 1; }
    SamplesPanel > #cards { height: 1fr; }
    """
    MAX_CARDS = 4
    CARD_WIDTH = 24  # narrowest useful card, in cells

    class Resized(Message):
        """How many cards fit changed: the screen shows the samples again."""

    def __init__(self, image_class: type[Widget], **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._image_class = image_class
        self.rounds: list[SampleRound] = []
        self.selected: int | None = None  # index into rounds; None follows the latest
        self.prompt_offset = 0

    def compose(self) -> ComposeResult:
        yield Static("no samples yet", id="samples-head")
        with Horizontal(id="cards"):
            for i in range(self.MAX_CARDS):
                yield SampleCard(self._image_class, id=f"card-{i}")

    def on_resize(self) -> None:
        self.post_message(self.Resized())

    def visible_count(self) -> int:
        width = self.size.width or self.CARD_WIDTH
        return max(1, min(self.MAX_CARDS, width // self.CARD_WIDTH))

    def current(self) -> SampleRound | None:
        if not self.rounds:
            return None
        index = len(self.rounds) - 1 if self.selected is None else max(0, min(self.selected, len(self.rounds) - 1))
        return self.rounds[index]

    def current_index(self) -> int:
        return len(self.rounds) - 1 if self.selected is None else self.selected

    def browse_round(self, delta: int) -> None:
        if not self.rounds:
            return
        index = max(0, min(len(self.rounds) - 1, self.current_index() + delta))
        self.selected = None if index == len(self.rounds) - 1 else index

    def browse_prompt(self, delta: int) -> None:
        current = self.current()
        count = len(current.samples) if current else 0
        self.prompt_offset = max(0, min(max(0, count - 1), self.prompt_offset + delta))

    def shown(self) -> list[Sample]:
        """The samples the cards show now."""
        current = self.current()
        if current is None:
            return []
        ordered = current.ordered()
        start = min(self.prompt_offset, max(0, len(ordered) - 1))
        return ordered[start : start + self.visible_count()]

    def head(self) -> Text:
        current = self.current()
        if current is None:
            return Text("no samples yet (m: sample now)", style="dim")
        ordered = current.ordered()
        start = min(self.prompt_offset, max(0, len(ordered) - 1))
        shown = min(len(ordered) - start, self.visible_count())
        text = Text.assemble(
            (f"step {current.step} · epoch {current.epoch}", "bold"), " · ",
            f"round {self.current_index() + 1}/{len(self.rounds)}",
            f" · prompts {start + 1}-{start + shown} of {len(ordered)}" if len(ordered) > shown else "",
            ("   ←/→ earlier/later  ↑/↓ prompts" if len(self.rounds) > 1 or len(ordered) > shown else "", "dim"),
        )
        if self.selected is not None:
            text.append("  (browsing: end = latest)", "dim")
        return text


def fit_picture(path: str, max_side: int = 512) -> Image.Image:
    """A sample image decoded and shrunk for the terminal (on a worker thread)."""
    with Image.open(path, formats=SUPPORTED_FORMATS) as image:  # the trainer writes PNGs; nothing exotic is parsed
        image.draft("RGB", (max_side, max_side))
        picture = image.convert("RGB")
    if max(picture.size) > max_side:
        scale = max_side / max(picture.size)
        width, height = max(1, math.floor(picture.width * scale)), max(1, math.floor(picture.height * scale))
        picture = picture.resize((width, height))
    return picture
