"""The compare view (issue 21): every save's samples side by side, to choose the best save.

Rows are the sampling rounds (one per step) and the strength sweeps of `tuitrain sample`
(samples/sweep-stepNNNNNN/, a row per strength); columns are the prompts. Beside each row: its
eval loss (trainer/evaluation.py), whether that step was saved, and the pick (runs/pick.py).
Arrows move, enter zooms one cell, `*` picks the row's save, `w` writes the grid as a contact
sheet PNG in the run directory. Pictures are decoded on a worker thread, a window of rows and
columns at a time, so a long run's hundreds of rounds cost what fits on the screen.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Static

from tuitrain.runs.layout import RunDir
from tuitrain.tui.app_screen import AppScreen
from tuitrain.tui.dashboard.model import RunModel
from tuitrain.tui.dashboard.widgets import fit_picture
from tuitrain.tui.footer import ScreenFooter

LABEL_WIDTH = 16
CELL_WIDTH = 22
CELL_HEIGHT = 10  # picture and a caption line


@dataclass
class GridRow:
    """One row of the grid: a round of training samples, or one strength of a sweep."""

    step: int
    scale: float | None = None  # a sweep's strength; None: the training samples
    cells: dict[int, str] = field(default_factory=dict)  # column (prompt) -> image path
    prompts: dict[int, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"step {self.step}" if self.scale is None else f"step {self.step} ×{self.scale:g}"


def sweep_rows(samples: Path) -> list[GridRow]:
    """The strength sweeps in a run's samples folder (trainer/resample.py's sidecars), a row per strength."""
    rows: dict[tuple[int, float], GridRow] = {}
    for sidecar in sorted(samples.glob("sweep-step*/*.json")):
        try:
            meta = json.loads(sidecar.read_text())
            step, scale, column = int(meta["step"]), float(meta["scale"]), int(meta["column"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        row = rows.setdefault((step, scale), GridRow(step, scale))
        row.cells[column] = str(sidecar.with_suffix(".png"))
        row.prompts[column] = str(meta.get("prompt", ""))
    return [rows[k] for k in sorted(rows)]


def grid_rows(model: RunModel, samples: Path) -> list[GridRow]:
    """Training rounds by step, then the sweeps (call with the model's lock held)."""
    rows = []
    for r in model.rounds:
        row = GridRow(r.step)
        for index, sample in r.samples.items():
            row.cells[index] = sample.path
            row.prompts[index] = sample.prompt
        rows.append(row)
    return rows + sweep_rows(samples)


def row_note(row: GridRow, evals: dict[int, tuple[float, float | None]], saved: set[int],
             picked: int | None) -> Text:
    """What stands beside a row: its eval loss (and the training images'), saved, picked."""
    text = Text()
    scored = evals.get(row.step)
    if scored is not None and row.scale is None:
        text.append(f"eval {scored[0]:.4g}\n", "bold")
        if scored[1] is not None:
            text.append(f"train {scored[1]:.4g}\n", "dim")
    if row.step in saved and row.scale is None:
        text.append("saved", "dim")
    if picked == row.step and row.scale is None:
        text.append(" ★ picked", "bold")
    return text


class CompareCell(Vertical):
    """One picture of the grid and a one-line caption."""

    DEFAULT_CSS = """
    CompareCell { width: 1fr; height: 1fr; align-horizontal: center; border: blank; }
    CompareCell.-cursor { border: heavy $accent; }
    CompareCell > .picture { width: auto; height: 1fr; max-width: 100%; }
    CompareCell > .caption { height: 1; color: $text-muted; }
    """

    def __init__(self, image_class: type[Widget], **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._image_class = image_class
        self.path: str | None = None

    def compose(self) -> ComposeResult:
        yield self._image_class(classes="picture")
        yield Static("", classes="caption")

    def show(self, path: str | None, picture: Image.Image | None, caption: str) -> None:
        """Show a picture; a cell mounted a moment ago (its parts not composed yet) shows it once they are."""
        self.path = path
        self._shown = (picture, caption)
        self._apply()

    def on_mount(self) -> None:
        self.call_after_refresh(self._apply)

    def _apply(self) -> None:
        picture, caption = getattr(self, "_shown", (None, ""))
        try:
            image, label = self.query_one(".picture"), self.query_one(".caption", Static)
        except NoMatches:
            return
        image.image = picture  # type: ignore[attr-defined]
        label.update(Text(caption, overflow="ellipsis", no_wrap=True), layout=False)


class GridLine(Horizontal):
    """One row of cells on the screen and its label, held by reference: filled before or after it composes."""

    def __init__(self, image_class: type[Widget], columns: int) -> None:
        super().__init__(classes="grid-row")
        self.label = Static("", classes="row-label")
        self.cells = [CompareCell(image_class) for _ in range(columns)]

    def compose(self) -> ComposeResult:
        yield self.label
        yield from self.cells


class ZoomScreen(ModalScreen[None]):
    """One cell of the grid at the size of the screen."""

    HELP_GROUP = "Compare"
    DEFAULT_CSS = """
    ZoomScreen { align: center middle; background: $background 90%; }
    ZoomScreen > #zoom-picture { width: auto; height: 1fr; max-width: 100%; }
    ZoomScreen > #zoom-caption { height: 2; width: 100%; padding: 0 1; }
    """
    BINDINGS = [Binding("escape,enter,z,q", "dismiss", "Back", id="compare.zoom.back")]

    def __init__(self, image_class: type[Widget], path: str, caption: str) -> None:
        super().__init__()
        self._image_class, self.path, self.caption = image_class, path, caption

    def compose(self) -> ComposeResult:
        yield self._image_class(id="zoom-picture")
        yield Static(Text(self.caption), id="zoom-caption")

    def on_mount(self) -> None:
        self._load()

    @work(thread=True, exclusive=True)
    def _load(self) -> None:
        try:
            picture: Image.Image | None = fit_picture(self.path, 1024)
        except (OSError, ValueError) as exc:
            picture = None
            self.app.call_from_thread(self.query_one("#zoom-caption", Static).update,
                                      f"cannot read {Path(self.path).name}: {exc.__class__.__name__}")
        self.app.call_from_thread(setattr, self.query_one("#zoom-picture"), "image", picture)

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(None)


class CompareScreen(AppScreen[None]):
    """The grid of saves x prompts (see the module docstring)."""

    HELP_GROUP = "Compare"
    DEFAULT_CSS = f"""
    CompareScreen {{ layout: vertical; }}
    CompareScreen #compare-head {{ height: 1; padding: 0 1; background: $panel; }}
    CompareScreen #grid {{ height: 1fr; }}
    CompareScreen .grid-row {{ height: {CELL_HEIGHT}; }}
    CompareScreen .row-label {{ width: {LABEL_WIDTH}; height: 1fr; padding: 1 1 0 1; }}
    CompareScreen .row-label.-cursor {{ background: $boost; }}
    CompareScreen #compare-empty {{ padding: 1 2; color: $text-muted; }}
    """
    BINDINGS = [
        Binding("up", "move(-1, 0)", "Row up", show=False, id="compare.up"),
        Binding("down", "move(1, 0)", "Row down", show=False, id="compare.down"),
        Binding("left", "move(0, -1)", "Prompt left", show=False, id="compare.left"),
        Binding("right", "move(0, 1)", "Prompt right", show=False, id="compare.right"),
        Binding("home", "edge(-1)", "First row", show=False, id="compare.first"),
        Binding("end", "edge(1)", "Last row", show=False, id="compare.last"),
        Binding("enter,z", "zoom", "Zoom", id="compare.zoom"),
        Binding("asterisk", "pick", "Pick this save", id="compare.pick"),
        Binding("s", "sweep", "Strength sweep", id="compare.sweep"),
        Binding("w", "sheet", "Contact sheet", id="compare.sheet"),
        Binding("escape,c,q", "close", "Back", id="compare.back"),
    ]
    NARROW_LABELS = {"pick": "Pick", "sheet": "Sheet", "sweep": "Sweep"}

    def __init__(self, run: RunDir, model: RunModel, image_class: type[Widget], live: bool = False) -> None:
        super().__init__()
        self.run, self.model, self._image_class, self.live = run, model, image_class, live
        self.rows: list[GridRow] = []
        self.columns = 0
        self.row, self.column = 0, 0  # the cursor
        self.top, self.left = 0, 0  # the window's first row and column
        self.shape = (0, 0)  # rows x columns of cells on the screen
        self.picked: int | None = None
        self._evals: dict[int, tuple[float, float | None]] = {}
        self._saved: set[int] = set()
        self._pictures: dict[str, Image.Image | None] = {}
        self._version = -1
        self._lines: list[GridLine] = []

    # -- data -----------------------------------------------------------------------------------
    def reload(self) -> None:
        """Read the grid from the model and the samples folder (sweeps), and the pick."""
        from tuitrain.runs.pick import read_pick

        m = self.model
        with m.lock:
            rows = grid_rows(m, self.run.samples)
            self._evals = dict(m.evals)
            self._saved = {e["step"] for e in m.saved if isinstance(e.get("step"), int)}
            self._version = m.v_samples
        note = read_pick(self.run) if self.run.output.is_dir() else None
        self.picked = note["step"] if note else None
        self.rows = rows
        self.columns = max((max(r.cells) + 1 for r in rows if r.cells), default=0)
        self.row = max(0, min(self.row, len(rows) - 1))
        self.column = max(0, min(self.column, self.columns - 1))

    @property
    def current(self) -> GridRow | None:
        return self.rows[self.row] if self.rows else None

    # -- layout ---------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static("", id="compare-head")
        yield Vertical(id="grid")
        yield ScreenFooter()

    def on_mount(self) -> None:
        self.reload()
        self.set_interval(1.0, self._poll)

    def on_resize(self) -> None:
        self._build()

    def _poll(self) -> None:
        with self.model.lock:
            changed = self.model.v_samples != self._version
        if changed:
            self.reload()
            self._build()

    def _fit(self) -> tuple[int, int]:
        grid = self.query_one("#grid")
        width = grid.size.width or self.size.width
        height = grid.size.height or max(1, self.size.height - 2)
        columns = max(1, min(max(1, self.columns), (width - LABEL_WIDTH) // CELL_WIDTH))
        rows = max(1, min(max(1, len(self.rows)), height // CELL_HEIGHT))
        return rows, columns

    def _build(self) -> None:
        """(Re)make the cells when the shape that fits changed, then fill them."""
        shape = self._fit()
        grid = self.query_one("#grid")
        if shape != self.shape or not grid.children:
            self.shape = shape
            grid.remove_children()
            self._lines = []
            if not self.rows:
                grid.mount(Static("no samples yet: they appear here as the run draws them (sampling.every_epochs), "
                                  "and `tuitrain sample RUN` adds strength sweeps", id="compare-empty"))
            else:
                self._lines = [GridLine(self._image_class, shape[1]) for _ in range(shape[0])]
                grid.mount(*self._lines)
        self.call_after_refresh(self._fill)

    def _follow_cursor(self) -> None:
        rows, columns = self.shape
        self.top = min(max(self.top, self.row - rows + 1), self.row)
        self.left = min(max(self.left, self.column - columns + 1), self.column)

    def _fill(self) -> None:
        self._follow_cursor()
        self.query_one("#compare-head", Static).update(self._head(), layout=False)
        if not self.rows:
            return
        wanted: list[str] = []
        for r, line in enumerate(self._lines):
            index = self.top + r
            row = self.rows[index] if index < len(self.rows) else None
            label = line.label
            label.set_class(index == self.row, "-cursor")
            if row is None:
                label.update("")
            else:
                note = row_note(row, self._evals, self._saved, self.picked)
                label.update(Text.assemble((row.label + "\n", "bold"), note), layout=False)
            for c, cell in enumerate(line.cells):
                column = self.left + c
                path = row.cells.get(column) if row else None
                cell.set_class(index == self.row and column == self.column, "-cursor")
                caption = (row.prompts.get(column, "") or "(empty prompt)") if path and row else ""
                cell.show(path, self._pictures.get(path) if path else None, caption)
                if path and path not in self._pictures:
                    wanted.append(path)
        if wanted:
            self._load(wanted)

    @work(thread=True, exclusive=True, group="compare")
    def _load(self, paths: list[str]) -> None:
        for path in paths:
            try:
                picture: Image.Image | None = fit_picture(path, 256)
            except (OSError, ValueError):
                picture = None
            if len(self._pictures) > 256:
                self._pictures.clear()
            self._pictures[path] = picture
        self.app.call_from_thread(self._fill)

    def _head(self) -> Text:
        if not self.rows:
            return Text("compare saves · no samples yet", style="bold")
        row = self.rows[self.row]
        text = Text.assemble(("compare saves", "bold"), f" · {row.label} · prompt {self.column + 1}/{self.columns}",
                             f" · row {self.row + 1}/{len(self.rows)}")
        best = min(self._evals.items(), key=lambda kv: kv[1][0], default=None)
        if best is not None:
            text.append(f" · lowest eval loss at step {best[0]} ({best[1][0]:.4g})")
        if self.picked is not None:
            text.append(f" · ★ step {self.picked}")
        return text

    # -- keys -----------------------------------------------------------------------------------
    def action_move(self, rows: int, columns: int) -> None:
        if not self.rows:
            return
        self.row = max(0, min(len(self.rows) - 1, self.row + rows))
        self.column = max(0, min(max(0, self.columns - 1), self.column + columns))
        self._fill()

    def action_edge(self, direction: int) -> None:
        self.row = 0 if direction < 0 else max(0, len(self.rows) - 1)
        self._fill()

    def action_zoom(self) -> None:
        row = self.current
        path = row.cells.get(self.column) if row else None
        if row is None or path is None:
            self.notify("no picture here", severity="warning", timeout=3)
            return
        caption = f"{row.label} · prompt {self.column + 1}: {row.prompts.get(self.column, '')}"
        self.app.push_screen(ZoomScreen(self._image_class, path, caption))

    def action_pick(self) -> None:
        row = self.current
        if row is None:
            return
        if row.scale is not None:
            self.notify("a sweep row draws a save at a strength: pick its save from the training row of "
                        f"step {row.step}", severity="warning", timeout=5)
            return
        if self.live:
            self.notify("the run is training: pick a save when it has finished or been stopped", severity="warning")
            return
        self._pick(row.step)

    @work(thread=True, exclusive=True, group="pick")
    def _pick(self, step: int) -> None:
        from tuitrain.runs.pick import PickError, pick

        try:
            picked = pick(self.run, str(step))
        except (PickError, OSError) as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="error", timeout=8)
            return
        kept = "".join(f"; kept {old.name} as {new.name}" for old, new in picked.kept)
        self.app.call_from_thread(self._picked, step, f"picked step {step}: {picked.target.name}{kept}")

    def _picked(self, step: int, message: str) -> None:
        self.picked = step
        self.notify(message, timeout=6)
        self._fill()

    def action_sweep(self) -> None:
        """`tuitrain sample RUN --save STEP` for the row's save, in its own process (the TUI never loads torch)."""
        row = self.current
        if row is None:
            return
        if self.live:
            self.notify("the run is training: draw strength sweeps when it has finished or been stopped",
                        severity="warning")
            return
        self.notify(f"drawing step {row.step}'s save at strengths 0.6, 0.8, 1.0 (tuitrain sample); its rows "
                    "appear here when done", timeout=6)
        self._sweep(row.step)

    @work(thread=True, exclusive=True, group="sweep")
    def _sweep(self, step: int) -> None:
        import subprocess
        import sys

        command = [sys.executable, "-m", "tuitrain", "--workspace", str(self.run.root.parent), "sample",
                   self.run.name, "--save", str(step)]
        try:
            done = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        except OSError as exc:
            self.app.call_from_thread(self.notify, f"could not start tuitrain sample: {exc}", severity="error")
            return
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["tuitrain sample failed"])[-1]
            self.app.call_from_thread(self.notify, last, severity="error", timeout=10)
            return
        self.app.call_from_thread(self._swept, step)

    def _swept(self, step: int) -> None:
        self.reload()
        self._build()
        self.notify(f"strength sweep of step {step} drawn", timeout=4)

    def action_sheet(self) -> None:
        self._sheet()

    @work(thread=True, exclusive=True, group="sheet")
    def _sheet(self) -> None:
        from tuitrain.runs.contact_sheet import Cell, draw_sheet, save_sheet

        cells = [Cell(row.label, index + (row.scale or 0) / 100, column, Path(path))
                 for index, row in enumerate(self.rows) for column, path in row.cells.items()]
        labels = {}
        for row in self.rows:
            scored = self._evals.get(row.step)
            if scored is not None and row.scale is None and math.isfinite(scored[0]):
                labels[row.label] = f"eval {scored[0]:.4g}" + (" *" if row.step == self.picked else "")
        target = self.run.root / "contact-sheet.png"
        try:
            written = save_sheet(draw_sheet(cells, labels), target)
        except OSError as exc:
            self.app.call_from_thread(self.notify, f"could not write {target}: {exc}", severity="error")
            return
        message = f"contact sheet: {written}" if written else "no samples to put on a contact sheet"
        self.app.call_from_thread(self.notify, message, timeout=6)

    def action_close(self) -> None:
        self.dismiss(None)
