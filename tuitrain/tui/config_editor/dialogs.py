"""The config editor's dialogs: pick a preset to load, confirm, and save as a user preset."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from tuitrain.config.presets import PresetInfo, preset_name_problem, user_presets_dir

DIALOG_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{
    width: 90; max-width: 100%; height: auto; max-height: 100%;
    border: round $primary; background: $surface; padding: 0 1;
}}
{name} .note {{ color: $text-muted; margin: 1 0 0 0; height: auto; }}
{name} .error {{ color: $error; height: auto; }}
{name} Horizontal {{ height: auto; align-horizontal: right; margin: 1 0 0 0; }}
{name} Button {{ margin: 0 0 0 1; }}
"""

LOAD_NOTE = (
    "Loading replaces the form's values with the preset's. Kept from this config: the data "
    "folders (data.concepts) and sample prompts, and the base model when the preset is for the "
    "same model family. Nothing is written until ctrl+s."
)


def preset_prompt(preset: PresetInfo, width: int) -> Text:
    """One option line: name, where it comes from, description."""
    text = Text.assemble((preset.name.ljust(width), "bold"), "  ")
    if preset.source == "user":
        text.append("user  ", "italic")
    else:
        text.append("      ")
    text.append(preset.description or "(no description)", "dim" if not preset.description else "")
    return text


class PresetPicker(ModalScreen[str | None]):
    """Every preset (`tuitrain presets`) with its description; Enter loads, Esc cancels."""

    HELP_GROUP = "Load preset"
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="config.load_preset.cancel")]
    DEFAULT_CSS = DIALOG_CSS.format(name="PresetPicker") + "PresetPicker OptionList { height: auto; max-height: 16; }"

    def __init__(self, presets: list[PresetInfo], current: str) -> None:
        super().__init__()
        self.presets = presets
        self.current = current

    def compose(self) -> ComposeResult:
        width = max((len(p.name) for p in self.presets), default=0)
        with Vertical() as box:
            box.border_title = "Load a preset"
            box.border_subtitle = "enter loads · esc cancels"
            yield OptionList(*[Option(preset_prompt(p, width), id=p.name) for p in self.presets], id="presets")
            yield Static(LOAD_NOTE, classes="note")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        names = [p.name for p in self.presets]
        if self.current in names:
            options.highlighted = names.index(self.current)
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmDialog(ModalScreen[bool]):
    """A yes/no question; y or Enter on Yes answers yes, n or Esc answers no."""

    HELP_GROUP = "Confirm"
    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="config.confirm.yes"),
        Binding("n,escape", "answer(False)", "No", id="config.confirm.no"),
    ]
    DEFAULT_CSS = DIALOG_CSS.format(name="ConfirmDialog") + "ConfirmDialog > Vertical { width: 70; }"

    def __init__(self, title: str, message: str, yes: str = "Yes") -> None:
        super().__init__()
        self.title_text = title
        self.message = message
        self.yes = yes

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = self.title_text
            yield Static(self.message, markup=False)
            with Horizontal():
                yield Button("No (n)", id="no")
                yield Button(f"{self.yes} (y)", id="yes", variant="warning")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


def save_note() -> str:
    return (
        f"Saved to {user_presets_dir()}/NAME.toml; `tuitrain presets` lists it and "
        "`tuitrain new RUN --preset NAME` uses it. It holds the values that differ from the defaults, "
        "including the base model (user presets stay on this machine). Left out: the data folders "
        "(data.concepts) and saving.name, which belong to one run, so the preset fits any data set."
    )


class SavePresetDialog(ModalScreen[tuple[str, str] | None]):
    """Name and description of a new user preset; answers (name, description) or None.

    An unusable name is refused here with the rule; an existing user preset, or a name
    that would hide a built-in one, needs a second Save to confirm.
    """

    HELP_GROUP = "Save as preset"
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="config.save_preset.cancel")]
    DEFAULT_CSS = DIALOG_CSS.format(name="SavePresetDialog") + "SavePresetDialog Input { margin: 0 0 1 0; }"

    def __init__(self, presets: list[PresetInfo], name: str = "", description: str = "") -> None:
        super().__init__()
        self.presets = {p.name: p for p in presets}
        self.initial_name = name
        self.initial_description = description
        self._confirmed_for = ""  # the name whose overwrite warning was shown

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "Save as a user preset"
            box.border_subtitle = "enter saves · esc cancels"
            yield Label("Name")
            yield Input(self.initial_name, placeholder="my-sdxl-style", id="preset-name")
            yield Label("Description (one line, shown by `tuitrain presets`)")
            yield Input(self.initial_description, placeholder="SDXL LoRA for painterly styles", id="preset-description")
            yield Static("", classes="error", id="preset-error", markup=False)
            yield Static(save_note(), classes="note", markup=False)
            with Horizontal():
                yield Button("Cancel", id="cancel")
                yield Button("Save", id="save", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#preset-name", Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "preset-name" and event.value.strip() != self._confirmed_for:
            self._confirmed_for = ""
            self.query_one("#save", Button).label = "Save"
            self.query_one("#preset-error", Static).update("")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "preset-name":
            self.query_one("#preset-description", Input).focus()
        else:
            self.submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "save":
            self.submit()
        else:
            self.dismiss(None)

    def submit(self) -> None:
        name = self.query_one("#preset-name", Input).value.strip()
        description = self.query_one("#preset-description", Input).value.strip()
        error = self.query_one("#preset-error", Static)
        if problem := preset_name_problem(name):
            error.update(problem)
            self.query_one("#preset-name", Input).focus()
            return
        existing = self.presets.get(name)
        if existing is not None and self._confirmed_for != name:
            self._confirmed_for = name
            if existing.source == "user":
                error.update(f"A user preset {name!r} exists ({existing.path}). Save again to overwrite it.")
            else:
                error.update(f"{name!r} is a built-in preset: a user preset of that name replaces it in "
                             "`tuitrain presets` and for --preset. Save again to do so.")
            self.query_one("#save", Button).label = "Overwrite" if existing.source == "user" else "Save anyway"
            return
        self.dismiss((name, description))

    def action_cancel(self) -> None:
        self.dismiss(None)

