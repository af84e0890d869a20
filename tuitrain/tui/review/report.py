"""The pre-flight report over the review: what `tuitrain check` would print, scrollable."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from tuitrain.dataset import PreflightReport


class ReportScreen(ModalScreen[None]):
    """The report as plain text (it is written for 80 columns), closed with Esc, r or q."""

    BINDINGS = [
        Binding("escape,r,q", "dismiss", "Close", id="report.close"),
        Binding("up,k", "scroll(-1)", "Up", show=False, id="report.up"),
        Binding("down,j", "scroll(1)", "Down", show=False, id="report.down"),
    ]

    DEFAULT_CSS = """
    ReportScreen { align: center middle; }
    ReportScreen > VerticalScroll {
        width: 86; max-width: 100%; height: 90%; border: round $primary; background: $surface; padding: 0 1;
    }
    """

    def __init__(self, report: PreflightReport) -> None:
        super().__init__()
        self.report = report

    def compose(self) -> ComposeResult:
        verdict = "can train" if self.report.can_train else "cannot train"
        with VerticalScroll() as scroll:
            scroll.border_title = f"Pre-flight report: {verdict}"
            scroll.border_subtitle = "Esc closes"
            yield Static(Text(self.report.render()), id="report-text")
        yield Footer()

    def action_scroll(self, lines: int) -> None:
        self.query_one(VerticalScroll).scroll_relative(y=lines, animate=False)
