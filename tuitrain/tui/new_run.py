"""Creating a run from the home screen: the same result as `tuitrain new NAME --preset P --data DIR`."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Button, Input, Label, Select, Static

from tuitrain.runs import RunDir
from tuitrain.runs.create import RunNotCreated, base_model_value
from tuitrain.tui.base_model_field import BaseModelSuggester, describe_base, recent_models, remember_model

CHECK_AFTER_S = 0.4  # a pause in typing before the base model is looked at


def create_run(workspace: Path, name: str, preset: str | None, data: str = "", base: str = "") -> RunDir:
    """`tuitrain new`'s run creation, with config errors turned into RunNotCreated for the dialog."""
    from tuitrain.config import ConfigError
    from tuitrain.runs.create import create_run as make

    try:
        return make(workspace, name, preset, data, base)
    except ConfigError as exc:
        raise RunNotCreated("\n".join(exc.lines())) from None


class NewRunScreen(ModalScreen[str | None]):
    """Name, preset, base model and data folder; dismisses with the new run's name (None when cancelled).

    The base model is checked in a worker thread as it is typed (and for the preset's own when
    left blank), so a hub id that is neither reachable nor cached is said at once, not at train time.
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="new.cancel")]

    DEFAULT_CSS = """
    NewRunScreen { align: center middle; }
    NewRunScreen > VerticalScroll {
        width: 72; max-width: 100%; height: auto; max-height: 100%; border: round $primary; background: $surface;
        padding: 0 1;
    }
    NewRunScreen Label { margin-top: 0; }
    NewRunScreen #new-error { color: $error; height: auto; }
    NewRunScreen #new-base-status { height: auto; max-height: 4; color: $text-muted; }
    NewRunScreen #new-base-status.-bad { color: $warning; }
    NewRunScreen Horizontal { height: auto; margin-top: 1; align-horizontal: right; }
    NewRunScreen Button { margin-left: 1; }
    """

    def __init__(self, workspace: Path) -> None:
        super().__init__()
        self.workspace = workspace
        self._check_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        from tuitrain.config.presets import list_presets

        presets = list_presets()
        options = [(f"{p.name}  {p.description}".strip(), p.name) for p in presets]
        default = next((p.name for p in presets if p.name == "sdxl-lora"), presets[0].name if presets else None)
        with VerticalScroll() as box:  # fits 80x24; scrolls when an error makes it longer
            box.border_title = "New run"
            yield Label("Name")
            yield Input(placeholder="faery-v1", id="new-name")
            yield Label("Preset")
            value = default if default is not None else Select.BLANK
            yield Select(options, value=value, id="new-preset", allow_blank=False)
            yield Label("Base model: hub id, diffusers folder or .safetensors (blank: the preset's)")
            yield Input(placeholder="~/models/sd_xl_base_1.0.safetensors", id="new-base",
                        suggester=BaseModelSuggester(recent_models()))
            yield Static("", id="new-base-status")
            yield Label("Data folder (optional)")
            yield Input(placeholder="~/datasets/10_faery", id="new-data")
            yield Static("", id="new-error")
            with Horizontal():
                yield Button("Cancel", id="new-cancel")
                yield Button("Create", variant="primary", id="new-create")

    def on_mount(self) -> None:
        self.query_one("#new-name", Input).focus()
        self._check_base()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "new-base":
            if self._check_timer is not None:
                self._check_timer.stop()
            self._check_timer = self.set_timer(CHECK_AFTER_S, self._check_base)  # not on every key

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "new-preset":
            self._check_base()

    def _check_base(self) -> None:
        base = self.query_one("#new-base", Input).value
        preset = self.query_one("#new-preset", Select).value
        self._set_base_status(None, "checking the base model...")
        self.run_worker(
            partial(self._describe, base, preset if isinstance(preset, str) else None),
            thread=True, exclusive=True, group="base-check",
        )

    def _describe(self, base: str, preset: str | None) -> None:
        ok, text = describe_base(base, preset, Path.cwd())
        self.app.call_from_thread(self._show_described, base, ok, text)

    def _show_described(self, base: str, ok: bool, text: str) -> None:
        if self.is_attached and self.query_one("#new-base", Input).value == base:  # else a newer check is coming
            self._set_base_status(ok, text)

    def _set_base_status(self, ok: bool | None, text: str) -> None:
        status = self.query_one("#new-base-status", Static)
        status.update(text)
        status.set_class(ok is False, "-bad")

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
        base = self.query_one("#new-base", Input).value
        try:
            run = create_run(self.workspace, name, preset if isinstance(preset, str) else None, data, base)
        except RunNotCreated as exc:
            self.query_one("#new-error", Static).update(str(exc))
            return
        remember_model(base_model_value(base.strip()) if base.strip() else "")
        self.dismiss(run.name)
