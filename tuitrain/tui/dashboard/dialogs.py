"""The dashboard's questions: stop training? on quit, detach or stop? and, on t of a finished run, continue or new?"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

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


class FinishedChoice(ModalScreen["tuple[str, str] | None"]):
    """t on a finished run: continue it for more epochs, or start a new run from its config.

    Never "train it again from step 0": that would overwrite its saves and write a second
    history into its log (runs/continuation.py). Dismissed with ("continue", epochs),
    ("new", name) or None.
    """

    DEFAULT_CSS = _CSS.format(name="FinishedChoice") + """
    FinishedChoice > Vertical { width: 76; }
    FinishedChoice Horizontal { height: 3; margin-top: 1; }
    FinishedChoice Label { padding: 1 1 0 0; }
    FinishedChoice #more-epochs { width: 10; }
    FinishedChoice #new-name { width: 30; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="dashboard.finished.cancel")]

    def __init__(self, run_name: str, summary: str, epochs: int, new_name: str) -> None:
        super().__init__()
        self.run_name = run_name
        self.summary = summary
        self.epochs = epochs
        self.new_name = new_name

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"[b]{self.run_name} has finished[/b] ({self.summary}).\n\nTraining it again from step 0 "
                         "would overwrite its saves and its history. Instead:")
            with Horizontal():
                yield Label("continue it for")
                yield Input(str(self.epochs), id="more-epochs", restrict=r"[0-9]*", max_length=6)
                yield Label("more epochs, from its final state")
            with Horizontal():
                yield Label("or start a new run from its config, named")
                yield Input(self.new_name, id="new-name", max_length=100)
            yield Static("", id="choice-error")
            yield Static("enter: do the line you are on    tab: the other line    esc: cancel", classes="keys")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        error = self.query_one("#choice-error", Static)
        if event.input.id == "more-epochs":
            if not value.isdigit() or int(value) < 1:
                error.update("[b]more epochs[/b]: a whole number, 1 or more")
                return
            self.dismiss(("continue", value))
        else:
            from tuitrain.runs.layout import valid_run_name

            if not valid_run_name(value):
                error.update("[b]name[/b]: letters, digits, '.', '_', '-' (not first), at most 100")
                return
            self.dismiss(("new", value))

    def action_cancel(self) -> None:
        self.dismiss(None)
