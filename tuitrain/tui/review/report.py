"""The pre-flight report over the review: what `tuitrain check` would print, scrollable.

The report is written for 80 columns; the box holds fewer in an 80-column terminal, where
Textual's own wrapping broke lines mid-phrase and lost their indentation. So lines too long
for the box are re-wrapped here at spaces, continued under their own indentation.
"""

from __future__ import annotations

import re
import textwrap

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tuitrain.dataset import PreflightReport
from tuitrain.dataset.report_text import WIDTH as REPORT_WIDTH
from tuitrain.tui.footer import ScreenFooter

BOX_WIDTH = 86  # the report's 80 columns, its border, padding and scroll bar
BOX_FRAME = 6  # border 2, padding 2, vertical scroll bar 2


def unwrapped(text: str) -> list[str]:
    """The report's lines with the ones it wrapped at REPORT_WIDTH joined again: a line joins the one
    before when it is indented, is no new "- " item, and its first word would not have fitted there."""
    out: list[str] = []
    previous = ""  # the physical line before, as the report wrapped it
    for line in text.splitlines():
        words = line.split()
        wrapped = (out and words and line.startswith(" ") and words[0] != "-"
                   and len(previous) + 1 + len(words[0]) > REPORT_WIDTH)
        if wrapped:
            out[-1] += " " + line.strip()
        else:
            out.append(line)
        previous = line
    return out


def fit_lines(text: str, width: int) -> str:
    """`text` re-wrapped to `width`: each line too long is wrapped at spaces under its own indentation
    (a "- " item continues under its text); lines that fit are kept as they are."""
    if width >= REPORT_WIDTH:
        return text
    out: list[str] = []
    for line in unwrapped(text):
        if len(line) <= width:
            out.append(line)
            continue
        lead = re.match(r"\s*(?:- )?", line)
        first = lead.group(0) if lead else ""
        out.extend(textwrap.wrap(line[len(first):], width, initial_indent=first, subsequent_indent=" " * len(first),
                                 break_on_hyphens=False, break_long_words=False) or [line])
    return "\n".join(out)


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
        self._text = report.render()

    def compose(self) -> ComposeResult:
        verdict = "can train" if self.report.can_train else "cannot train"
        with VerticalScroll() as scroll:
            scroll.border_title = f"Pre-flight report: {verdict}"
            scroll.border_subtitle = "Esc closes"
            yield Static(id="report-text")
        yield ScreenFooter()

    def on_resize(self, event: events.Resize) -> None:
        width = max(20, min(BOX_WIDTH, event.size.width) - BOX_FRAME)
        self.query_one("#report-text", Static).update(Text(fit_lines(self._text, width)))

    def action_scroll(self, lines: int) -> None:
        self.query_one(VerticalScroll).scroll_relative(y=lines, animate=False)
