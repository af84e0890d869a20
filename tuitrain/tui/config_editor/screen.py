"""The config editor screen: schema-generated tabs, a help panel for the focused field, and
a side panel with what follows from the values (steps, VRAM estimate)."""

from __future__ import annotations

from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.events import DescendantFocus
from textual.markup import escape
from textual.screen import Screen
from textual.widgets import Footer, Static, TabbedContent, TabPane

from tuitrain.config.errors import ConfigError
from tuitrain.config.fields import GROUPS, OptionInfo
from tuitrain.tui.config_editor.document import ConfigDocument, all_options
from tuitrain.tui.config_editor.estimate import estimate_vram
from tuitrain.tui.config_editor.lists import ListEditor
from tuitrain.tui.config_editor.values import format_value, range_text, widget_kind
from tuitrain.tui.config_editor.widgets import FieldRow

TAB_TITLES = {"lora": "Method"}
# Values the step count depends on: the pre-flight scan re-runs only when one changes.
STEP_KEYS = ("data", "training.batch_size", "training.gradient_accumulation", "training.epochs", "training.max_steps")
DISK_CHECK_SECONDS = 1.0


def tab_options(options: list[OptionInfo], group: str) -> list[tuple[OptionInfo, list[OptionInfo]]]:
    """The top-level options of one tab, each with its item options when it is a list of tables."""
    out = []
    for option in options:
        if option.group != group or "[]" in option.path:
            continue
        items = [o for o in options if o.path.startswith(option.path + "[].")]
        out.append((option, items))
    return out


class ConfigEditorScreen(Screen[bool]):
    """Edits one config file; dismisses with True when it was saved at least once."""

    HELP_GROUP = "Config editor"
    BINDINGS = [
        Binding("ctrl+s", "save", "Save", id="config.save", priority=True),
        Binding("ctrl+t", "toggle_view", "Essential/all", id="config.view", priority=True),
        Binding("ctrl+r", "reset_field", "Reset to preset", id="config.reset", priority=True),
        Binding("ctrl+l", "reload", "Reload from disk", id="config.reload", priority=True),
        Binding("escape", "close", "Close", id="config.close"),
    ]

    DEFAULT_CSS = """
    ConfigEditorScreen #status { height: 1; background: $panel; padding: 0 1; }
    ConfigEditorScreen #body { height: 1fr; }
    ConfigEditorScreen TabbedContent { width: 1fr; }
    ConfigEditorScreen TabPane { padding: 0 1; }
    ConfigEditorScreen #side { width: 34%; max-width: 60; border-left: vkey $primary 50%; padding: 0 1; }
    ConfigEditorScreen #help { height: auto; margin: 0 0 1 0; }
    ConfigEditorScreen #derived { height: auto; }
    ConfigEditorScreen .empty-note { color: $text-muted; }
    ConfigEditorScreen.essential-only .advanced { display: none; }
    """

    def __init__(self, config_path: Path, *, essential_only: bool = False) -> None:
        super().__init__()
        self.config_path = Path(config_path)
        self.document = ConfigDocument.open(self.config_path)
        self.options = all_options()
        self.saved_once = False
        self._close_armed = False
        self._disk_warned = False
        self._steps_text = "steps: scanning…"
        self._last_step_inputs: object = None
        self.set_class(essential_only, "essential-only")

    def compose(self) -> ComposeResult:
        yield Static(id="status", markup=False)
        with Horizontal(id="body"):
            with TabbedContent(id="tabs"):
                for group in GROUPS:
                    with TabPane(TAB_TITLES.get(group, group.capitalize()), id=f"tab-{group}"):
                        with VerticalScroll():
                            entries = tab_options(self.options, group)
                            for option, items in entries:
                                if widget_kind(option) == "list":
                                    yield ListEditor(option, items, self.document)
                                else:
                                    yield FieldRow(option, option.path, self.document)
                            if all(o.level == "advanced" for o, _ in entries):
                                yield Static("Only advanced options here: ctrl+t shows them.",
                                             classes="empty-note essential-note")
            with Vertical(id="side"):
                yield Static("Move to a field to see its help.", id="help")
                yield Static(id="derived")
        yield Footer()

    def on_mount(self) -> None:
        for problem in self.document.load_problems:
            self.notify(problem, title="The config has errors", severity="warning", timeout=10)
        self.refresh_all()
        self.set_interval(DISK_CHECK_SECONDS, self.check_disk)
        first = self.query_one("#tab-model").query(FieldRow).first()
        first.editor.focus()  # not the first focusable widget of some hidden tab

    # --- validation and display ----------------------------------------------------------

    def rows(self) -> list[FieldRow]:
        return list(self.query(FieldRow))

    def row(self, path: str) -> FieldRow:
        """The row editing `path` (a key like training.learning_rate or data.concepts[0].path)."""
        for row in self.rows():
            if row.path == path:
                return row
        raise LookupError(path)

    def refresh_all(self) -> None:
        """Re-validate the whole config and show every message, mark and derived value."""
        result = self.document.validate()
        problems: dict[str, str] = {}
        unplaced: list[str] = []
        if isinstance(result, ConfigError):
            for problem in result.problems:
                problems.setdefault(problem.key, problem.message)
        paths = set()
        for row in self.rows():
            paths.add(row.path)
            row.show(problems.get(row.path, ""))
        for note in self.query(".essential-note"):
            note.display = self.has_class("essential-only")
        unplaced = [f"{k}: {m}" if k else m for k, m in problems.items() if k not in paths]
        self.update_status(unplaced)
        self.update_derived(result)

    def update_status(self, unplaced: list[str] | None = None) -> None:
        doc = self.document
        parts = [str(doc.path)]
        preset = doc.get("preset")
        parts.append(f"preset {preset}" if preset else "no preset")
        parts.append("unsaved changes" if doc.dirty else "saved")
        if unplaced:
            parts.append("problem: " + unplaced[0])
        if self._disk_warned:
            parts.append("CHANGED ON DISK: ctrl+l reloads")
        self.query_one("#status", Static).update("  ·  ".join(parts))

    def update_derived(self, result: object) -> None:
        estimate = estimate_vram(self.document.data)
        step_inputs = [repr(self.document.get(k)) for k in STEP_KEYS]
        if not isinstance(result, ConfigError) and step_inputs != self._last_step_inputs:
            self._last_step_inputs = step_inputs
            self._steps_text = "steps: scanning…"
            self.scan_steps(result)
        elif isinstance(result, ConfigError):
            self._steps_text = "steps: fix the config to count them"
        self.query_one("#derived", Static).update(
            f"[b]What follows[/b]\n{escape(self._steps_text)}\n\n[b]VRAM[/b]\n{escape(estimate.describe())}"
        )

    @work(thread=True, exclusive=True, group="preflight")
    def scan_steps(self, config: object) -> None:
        """Count steps from the pre-flight scan of the data folders (in a thread: folders can be big)."""
        from tuitrain.dataspec import config_preflight

        try:
            report = config_preflight(config, self.document.base_dir, full_check=False)  # type: ignore[arg-type]
            if not report.concepts or not report.steps_per_epoch:
                text = "steps: no images found yet" if report.concepts else "steps: add a data folder"
            else:
                text = (f"steps per epoch: {report.steps_per_epoch}\n"
                        f"total steps: {report.total_steps} ({report.epochs} epochs)")
        except Exception as exc:  # a scan problem is shown, never fatal to the form
            text = f"steps: cannot scan ({exc})"
        self.app.call_from_thread(self._show_steps, text)

    def _show_steps(self, text: str) -> None:
        self._steps_text = text
        self.update_derived(self.document.validate())

    def on_field_row_edited(self, event: FieldRow.Edited) -> None:
        self._close_armed = False
        self.refresh_all()
        self.show_help(event.row)

    def on_list_editor_resized(self, event: ListEditor.Resized) -> None:
        self.refresh_all()

    def on_descendant_focus(self, event: DescendantFocus) -> None:
        node = event.widget
        while node is not None and not isinstance(node, FieldRow):
            node = node.parent  # type: ignore[assignment]
        if isinstance(node, FieldRow):
            self.show_help(node)

    def show_help(self, row: FieldRow) -> None:
        """Help text, default, preset value and allowed range of the field being edited."""
        option = row.option
        lines = [f"[b]{escape(row.path)}[/b]  ({escape(option.type_name)}, {option.level})", escape(option.help)]
        default = "required" if repr(option.default) == "PydanticUndefined" else format_value(option.default) or "(empty)"
        lines.append(f"default: {escape(default)}")
        preset_value = self.document.baseline_value(row.path)
        if self.document.get("preset") and "[" not in row.path:
            lines.append(f"preset: {escape(format_value(preset_value) or '(empty)')}")
        if rng := range_text(option):
            lines.append(f"allowed: {escape(rng)}")
        if row.changed:
            lines.append("[b]●[/b] differs from the preset: ctrl+r resets it")
        self.query_one("#help", Static).update("\n".join(lines))

    # --- actions ---------------------------------------------------------------------------

    def action_save(self) -> None:
        error = self.document.save()
        if error is not None:
            self.notify("\n".join(error.lines()), title="Not saved", severity="error", timeout=12)
            return
        self.saved_once = True
        self._disk_warned = False
        self.notify(f"Saved {self.document.path}", title="Saved")
        self.refresh_all()

    def action_toggle_view(self) -> None:
        self.toggle_class("essential-only")
        view = "essential options only" if self.has_class("essential-only") else "all options"
        self.notify(f"Showing {view}", timeout=3)
        self.refresh_all()

    def action_reset_field(self) -> None:
        node = self.focused
        while node is not None and not isinstance(node, FieldRow):
            node = node.parent  # type: ignore[assignment]
        if not isinstance(node, FieldRow):
            self.notify("Move to a field first: ctrl+r resets the focused one", severity="warning")
            return
        self.document.set(node.path, self.document.baseline_value(node.path))
        node.reload()
        self.refresh_all()
        self.show_help(node)

    async def action_reload(self) -> None:
        try:
            self.document = ConfigDocument.open(self.config_path)
        except ConfigError as exc:
            self.notify("\n".join(exc.lines()), title="Cannot reload", severity="error", timeout=12)
            return
        self._disk_warned = False
        self._last_step_inputs = None
        await self.recompose()
        self.refresh_all()
        self.notify(f"Reloaded {self.config_path}")

    def check_disk(self) -> None:
        if not self._disk_warned and self.document.changed_on_disk():
            self._disk_warned = True
            self.notify(
                f"{self.config_path} changed on disk. ctrl+l reloads it (edits made here are lost); "
                "ctrl+s overwrites it.",
                title="Changed on disk", severity="warning", timeout=15,
            )
            self.update_status()

    def action_close(self) -> None:
        if self.document.dirty and not self._close_armed:
            self._close_armed = True
            self.notify("Unsaved changes: escape again discards them, ctrl+s saves.", severity="warning")
            return
        self.dismiss(self.saved_once)
