"""The dashboard's two questions: stop training? and, on quit, detach or stop?"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{
    width: 64; height: auto; padding: 1 2; border: thick $warning; background: $surface;
}}
{name} .keys {{ margin-top: 1; color: $text-muted; }}
"""


class ConfirmStop(ModalScreen[bool]):
    """x: stopping is not undone by a key, so it asks first."""

    DEFAULT_CSS = _CSS.format(name="ConfirmStop")
    BINDINGS = [
        Binding("y", "answer(True)", "Stop training", id="dashboard.stop.yes"),
        Binding("n,escape", "answer(False)", "Keep training", id="dashboard.stop.no"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("[b]Stop training?[/b]\n\nThe trainer saves the LoRA (and a backup), then stops. "
                         "Press t later to resume from the backup.")
            yield Static("y: stop    n / esc: keep training", classes="keys")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class QuitChoice(ModalScreen[str]):
    """q while a trainer runs: leave it running (detach) or stop it."""

    DEFAULT_CSS = _CSS.format(name="QuitChoice")
    BINDINGS = [
        Binding("d", "answer('detach')", "Detach", id="dashboard.quit.detach"),
        Binding("x", "answer('stop')", "Stop and quit", id="dashboard.quit.stop"),
        Binding("escape,n", "answer('stay')", "Stay", id="dashboard.quit.stay"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("[b]Leave the dashboard?[/b]\n\nThe trainer runs on its own: detach and it keeps "
                         "training (tuitrain attach brings you back), or stop it first.")
            yield Static("d: detach (keep training)    x: stop training and quit    esc: stay", classes="keys")

    def action_answer(self, answer: str) -> None:
        self.dismiss(answer)
