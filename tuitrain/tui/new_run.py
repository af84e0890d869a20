"""Creating a run from the home screen: the same result as `tuitrain new NAME --preset P --data DIR`."""

from __future__ import annotations

from pathlib import Path
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from tuitrain.runs import RunDir
from tuitrain.runs.create import RunNotCreated


def create_run(workspace: Path, name: str, preset: str | None, data: str = "") -> RunDir:
    """`tuitrain new`'s run creation, with config errors turned into RunNotCreated for the dialog."""
    from tuitrain.config import ConfigError
    from tuitrain.runs.create import create_run as make

    try:
        return make(workspace, name, preset, data)
    except ConfigError as exc:
        raise RunNotCreated("\n".join(exc.lines())) from None


class NewRunScreen(ModalScreen[str | None]):
    """Name, preset and data folder; dismisses with the new run's name (None when cancelled)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="new.cancel")]

    DEFAULT_CSS = """
    NewRunScreen { align: center middle; }
    NewRunScreen > Vertical {
        width: 72; max-width: 100%; height: auto; border: round $primary; background: $surface; padding: 0 1;
    }
    NewRunScreen Label { margin-top: 1; }
    NewRunScreen #new-error { color: $error; height: auto; margin-top: 1; }
    NewRunScreen Horizontal { height: auto; margin-top: 1; align-horizontal: right; }
    NewRunScreen Button { margin-left: 1; }
    """

    def __init__(self, workspace: Path) -> None:
        super().__init__()
        self.workspace = workspace

    def compose(self) -> ComposeResult:
        from tuitrain.config.presets import list_presets

        presets = list_presets()
        options = [(f"{p.name}  {p.description}".strip(), p.name) for p in presets]
        default = next((p.name for p in presets if p.name == "sdxl-lora"), presets[0].name if presets else None)
        with Vertical() as box:
            box.border_title = "New run"
            yield Label("Name")
            yield Input(placeholder="faery-v1", id="new-name")
            yield Label("Preset")
            value = default if default is not None else Select.BLANK
            yield Select(options, value=value, id="new-preset", allow_blank=False)
            yield Label("Data folder (optional)")
            yield Input(placeholder="~/datasets/10_faery", id="new-data")
            yield Static("", id="new-error")
            with Horizontal():
                yield Button("Cancel", id="new-cancel")
                yield Button("Create", variant="primary", id="new-create")

    def on_mount(self) -> None:
        self.query_one("#new-name", Input).focus()

    def on_input_submitted(self, _event: Input.Submitted) -> None:
        self._create()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "new-create":
            self._create()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def _create(self) -> None:
        name = self.query_one("#new-name", Input).value
        preset = self.query_one("#new-preset", Select).value
        data = self.query_one("#new-data", Input).value
        try:
            run = create_run(self.workspace, name, preset if isinstance(preset, str) else None, data)
        except RunNotCreated as exc:
            self.query_one("#new-error", Static).update(str(exc))
            return
        self.dismiss(run.name)
