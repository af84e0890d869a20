"""The config editor screen: schema-generated tabs, a help panel for the focused field, and
a side panel with what follows from the values (steps, VRAM estimate).

Validation as you type is split in two: a field's own check (number, range) runs on every
key and shows under the field at once; the whole-config check (cross-field rules, the
side panel) runs once typing pauses for VALIDATE_DELAY seconds, and rows, marks and panels
are only touched when what they show changes. Re-checking and redrawing every row on every
key cost 60-85 ms of CPU per keystroke; now about 10 (bench/config_editor_typing.py).
"""

from __future__ import annotations

import re
from pathlib import Path

from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.events import DescendantFocus
from textual.markup import escape
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Static

from tuitrain.config.errors import ConfigError
from tuitrain.config.fields import GROUPS, OptionInfo
from tuitrain.config.sections.optimizer import optimizer_reads
from tuitrain.families import FAMILIES
from tuitrain.tui.app_screen import AppScreen
from tuitrain.tui.base_app import dismiss_or_exit
from tuitrain.tui.config_editor.dialogs import ConfirmDialog, PresetPicker, SavePresetDialog
from tuitrain.tui.config_editor.effective_batch import effective_batch_text, lr_note
from tuitrain.tui.config_editor.document import ConfigDocument, all_options
from tuitrain.tui.config_editor.estimate import estimate_vram
from tuitrain.tui.config_editor.extra_rows import EXTRAS_TITLE, ExtraKeyRow
from tuitrain.tui.config_editor.extras import is_known
from tuitrain.tui.config_editor.faces import FaceStyles
from tuitrain.tui.config_editor.form_tabs import FormTabs, TabStrip
from tuitrain.tui.config_editor.lists import ListEditor
from tuitrain.tui.config_editor.tab_forms import FormBuilder, TabForm, built_forms
from tuitrain.tui.config_editor.lr_preview import lr_preview
from tuitrain.tui.config_editor.values import format_value, range_text, widget_kind
from tuitrain.tui.config_editor.widgets import ALT_DIGIT_CHARACTERS, FieldRow
from tuitrain.tui.footer import NARROW_COLUMNS, ScreenFooter

TAB_TITLES = {"lora": "Method"}
# Sections used by one training.method only; the others are dimmed (hidden in the essential view).
METHOD_SECTIONS = {"lora": "lora", "embedding": "embedding", "finetune": "finetune"}
# Options marked objective="ddpm" / "flow" in the schema show only while model.family trains with that objective.
OBJECTIVE_WORDS = {"ddpm": "DDPM", "flow": "flow matching"}
# Values the step count depends on: the pre-flight scan re-runs only when one changes.
STEP_KEYS = ("data", "training.batch_size", "training.gradient_accumulation", "training.epochs", "training.max_steps",
             "distributed.processes", "distributed.gpus")  # the processes split the batches (data.shard)
DISK_CHECK_SECONDS = 1.0
VALIDATE_DELAY = 0.15  # seconds of no typing before the whole config is checked
TAB_KEYS = 8  # alt+1 .. alt+8


def shown_path(path: Path) -> str:
    """The config's path as the status line shows it: the home folder as ~ (tests pin it)."""
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except ValueError:
        return str(path)


def tab_options(options: list[OptionInfo], group: str) -> list[tuple[OptionInfo, list[OptionInfo]]]:
    """The top-level options of one tab, each with its item options when it is a list of tables."""
    out = []
    for option in options:
        if option.group != group or "[]" in option.path:
            continue
        items = [o for o in options if o.path.startswith(option.path + "[].")]
        out.append((option, items))
    return out


def section_of(option: OptionInfo) -> str:
    """The TOML table an option lives in ('' for top-level keys such as preset)."""
    return option.path.split(".", 1)[0] if "." in option.path else ""


def tab_sections(entries: list[tuple[OptionInfo, list[OptionInfo]]]) -> dict[str, list[tuple[OptionInfo, list[OptionInfo]]]]:
    """A tab's options by section, in schema order."""
    out: dict[str, list[tuple[OptionInfo, list[OptionInfo]]]] = {}
    for entry in entries:
        out.setdefault(section_of(entry[0]), []).append(entry)
    return out


def shown_within(widget: Widget, container: Widget) -> bool:
    """Whether no node from `widget` up to `container` is display: none (the essential view
    hides advanced rows and unused sections)."""
    node: Widget | None = widget
    while node is not None and node is not container:
        if not node.display:
            return False
        node = node.parent if isinstance(node.parent, Widget) else None
    return True


def tab_bindings() -> list[Binding]:
    """ctrl+pageup/pagedown and alt+1..8 (priority: they work from any widget of the form)."""
    return [
        Binding("ctrl+pagedown", "switch_tab(1)", "Next tab", id="config.tab.next", key_display="^PgDn",
                priority=True),
        Binding("ctrl+pageup", "switch_tab(-1)", "Previous tab", id="config.tab.previous", show=False,
                priority=True),
        *[
            Binding(f"alt+{n},{ALT_DIGIT_CHARACTERS[n - 1]}", f"show_tab({n})", f"Tab {n}", id=f"config.tab.{n}",
                    key_display=f"alt+{n}", show=False, priority=True)  # both keys are alt+n to the user
            for n in range(1, TAB_KEYS + 1)
        ],
    ]


class ConfigEditorScreen(AppScreen[bool]):
    """Edits one config file; dismisses with True when it was saved at least once."""

    HELP_GROUP = "Config editor"
    BINDINGS = [
        Binding("ctrl+s", "save", "Save", id="config.save", priority=True),
        Binding("ctrl+o", "load_preset", "Load preset", id="config.load_preset", priority=True),
        Binding("ctrl+n", "save_preset", "Save as preset", id="config.save_preset", priority=True),
        *tab_bindings(),
        Binding("ctrl+t", "toggle_view", "Essential/all", id="config.view", priority=True),
        Binding("ctrl+r", "reset_field", "Reset to preset", id="config.reset", priority=True),
        Binding("ctrl+l", "reload", "Reload from disk", id="config.reload", priority=True, show=False),
        Binding("f1", "app.help", "Keys", id="config.help"),
        Binding("escape", "close", "Close", id="config.close"),
        # Textual's tab/shift+tab, with the row's editor made before the next key is read (FieldRow).
        Binding("tab", "next_field(1)", "Next field", id="config.next_field", show=False),
        Binding("shift+tab", "next_field(-1)", "Previous field", id="config.previous_field", show=False),
    ]
    NARROW_LABELS = {  # the footer's, below 100 columns
        "load_preset": "Preset", "save_preset": "Save preset", "switch_tab(1)": "Tab", "toggle_view": "All",
        "reset_field": "Reset",
    }

    DEFAULT_CSS = """
    ConfigEditorScreen #status { height: 1; background: $panel; padding: 0 1; }
    ConfigEditorScreen #body { height: 1fr; }
    ConfigEditorScreen FormTabs { width: 1fr; }
    ConfigEditorScreen TabForm { margin: 0 1; }
    ConfigEditorScreen #side { width: 34%; max-width: 60; border-left: vkey $primary 50%; padding: 0 1; }
    ConfigEditorScreen #help { height: 1fr; margin: 0 0 1 0; }
    ConfigEditorScreen #derived { height: auto; }
    ConfigEditorScreen .empty-note { color: $text-muted; }
    ConfigEditorScreen .section { height: auto; }
    ConfigEditorScreen .section-title { height: 1; text-style: bold; color: $accent; margin: 1 0 0 0; }
    ConfigEditorScreen .section.unused .section-title { color: $text-muted; text-style: none; }
    ConfigEditorScreen .extras { height: auto; margin: 0 0 1 0; }
    ConfigEditorScreen .extras-title { height: auto; text-style: bold; color: $error; margin: 1 0 0 0; }
    ConfigEditorScreen.essential-only .advanced { display: none; }
    ConfigEditorScreen.essential-only .section.unused { display: none; }
    ConfigEditorScreen FieldRow.other-objective { display: none; }
    ConfigEditorScreen .section.other-objective { display: none; }
    ConfigEditorScreen.-narrow #body { layout: vertical; }
    ConfigEditorScreen.-narrow FormTabs { height: 1fr; }
    ConfigEditorScreen.-narrow #side {
        width: 1fr; max-width: 100%; height: 7; overflow-y: auto; border-left: none; border-top: hkey $primary 50%;
    }
    ConfigEditorScreen.-narrow #help { height: auto; }
    """

    def __init__(self, config_path: Path, *, essential_only: bool = False) -> None:
        super().__init__()
        self.config_path = Path(config_path)
        self.document = ConfigDocument.open(self.config_path)
        self.options = all_options()
        self.groups = [g for g in GROUPS if any(o.group == g for o in self.options)]  # tabs with options
        self.saved_once = False
        self._close_armed = False
        self._disk_warned = False
        self._steps_text = "steps: scanning…"
        self._total_steps: int | None = None  # the scan's count, for the LR curve (lr_preview)
        self._last_step_inputs: object = None
        self._last_result: object = None
        self._problems: dict[str, str] = {}
        self._unplaced: list[str] = []
        self._rows: dict[str, FieldRow] | None = None
        self._extras: list[ExtraKeyRow] | None = None
        self._extra_keys: list[str] = []
        self._lists: list[ListEditor] | None = None
        self._section_titles: list[Static] | None = None
        self._validate_timer: Timer | None = None
        self._shown_text: dict[str, str] = {}  # last text of #status, #derived, #help
        self._opens_on = ""  # the key whose row has its editor from the start (compose)
        self._also_eager: set[str] = set()  # tabs a rebuild composes at once (the one shown, the focus's)
        # Rows of the tabs composed with the screen that the family or optimizer hides ([flux] for SD 1.5:
        # half the first tab): mounted after the first frame, before the other tabs (_mount_deferred).
        self._deferred: list[tuple[Widget, list[FieldRow], Widget | None]] = []
        self._defer_hidden = False
        self._builder = FormBuilder(self._tab_forms, self._tab_built, self._mount_deferred)
        self.set_class(essential_only, "essential-only")

    def compose(self) -> ComposeResult:
        self._extra_keys = self.document.extra_keys()
        # Only the tabs seen first are composed now; the others fill in after the first frame (tab_forms.py).
        eager = {self.groups[0], *self._also_eager, *(self.extra_group(path) for path in self._extra_keys)}
        self._deferred = []
        self._defer_hidden = True  # only while the screen composes: a tab built later has its frame already
        # The panels' texts go in now, not from on_mount: those updates landed a frame after the form
        # (0.04-0.09 s later in a pty), so the first frame showed an empty status line and side panel.
        first = next((o for o, _ in tab_options(self.options, self.groups[0]) if o.level == "essential"), None)
        self._opens_on = first.path if first else ""  # its row is composed with its editor: the cursor starts there
        self._shown_text = {"status": self.status_text(), "derived": self.derived_text(),
                            "help": self.help_text(first, first.path) if first else "Move to a field to see its help."}
        yield FaceStyles()  # the colours of the values rows draw (first: rows look it up)
        yield Static(self._shown_text["status"], id="status", markup=False)
        with Horizontal(id="body"):
            titles = [TAB_TITLES.get(group, group.capitalize()) for group in self.groups]
            yield FormTabs([(f"{number} {title}" if number <= TAB_KEYS else title,
                             TabForm(group, self._compose_tab, built=group in eager))
                            for number, (group, title) in enumerate(zip(self.groups, titles), 1)], id="tabs")
            with Vertical(id="side"):
                yield Static(self._shown_text["help"], id="help")
                yield Static(self._shown_text["derived"], id="derived")
        self._builder = FormBuilder(self._tab_forms, self._tab_built, self._mount_deferred)  # after the first frame
        yield self._builder
        yield ScreenFooter()

    def _compose_tab(self, group: str) -> ComposeResult:
        extras = [path for path in self._extra_keys if self.extra_group(path) == group]
        if extras:
            with Vertical(classes="extras", id=f"extras-{group}"):
                yield Static(EXTRAS_TITLE, classes="extras-title")
                for path in extras:
                    yield ExtraKeyRow(path, self.document)
        entries = tab_options(self.options, group)
        sections = tab_sections(entries)
        titled = len([name for name in sections if name]) > 1  # e.g. [lora], [embedding], [finetune]
        for name, section_entries in sections.items():
            with Vertical(classes="section", id=f"sec-{name or 'top'}-{group}") as section:
                if titled and name:
                    yield Static(f"\\[{name}]", classes="section-title", name=name)
                later: list[FieldRow] = []  # hidden rows held back, mounted before the next row shown
                for option, items in section_entries:
                    if widget_kind(option) == "list":
                        widget: Widget = ListEditor(option, items, self.document)
                    else:
                        widget = FieldRow(option, option.path, self.document, with_editor=option.path == self._opens_on)
                        hidden = self.hidden_by_choice(option)
                        if hidden:  # mounted hidden, as update_objective_rows would; styled once, when mounted
                            widget.add_class("other-objective", update=False)
                        if self._defer_hidden and hidden:
                            later.append(widget)
                            continue
                    if later:
                        self._deferred.append((section, later, widget))
                        later = []
                    yield widget
                if later:
                    self._deferred.append((section, later, None))
                    if len(later) == len(section_entries):  # [flux] for SD 1.5: no title over nothing
                        section.add_class("other-objective", update=False)
        if all(o.level == "advanced" for o, _ in entries):
            yield Static("Only advanced options here: ctrl+t shows them.", classes="empty-note essential-note")

    def on_mount(self) -> None:
        self._defer_hidden = False
        self.set_class(self.app.size.width < NARROW_COLUMNS, "-narrow")  # before the first frame
        self._builder.start()
        for problem in self.document.load_problems:
            self.notify(problem, title="The config has errors", severity="warning", timeout=10)
        # The whole-config check after the first frame: compose drew the panels and marks already, and the
        # check (with the step scan's thread it starts) held that frame back by ~40 ms.
        self.call_after_refresh(self.refresh_all)
        self._show_essential_notes()
        self.set_interval(DISK_CHECK_SECONDS, self.check_disk)
        if self.focus_extra():
            return  # a key the form cannot show is what needs the user first
        rows = list(self.query_one(f"#tab-{self.groups[0]}").query(FieldRow))
        first = next((row for row in rows if row.option.level == "essential"), rows[0])
        first.editor.focus()  # the first value a user sets (the base model), not some hidden tab's

    def _tab_forms(self) -> list[TabForm]:
        try:
            body = self.query_one("#tabs", FormTabs)
        except NoMatches:  # the app is closing: the editor, its first screen, is being taken down
            return []
        return [node for node in body.walk_children() if isinstance(node, TabForm)]

    async def _mount_deferred(self) -> None:
        """Mount the hidden rows held back from the first frame (composing them cost ~0.4 s of a 0.8 s
        first frame on the 2-core machine), each where the form lists it, then draw them as a built tab's."""
        deferred, self._deferred = self._deferred, []
        forms: list[TabForm] = []
        for section, rows, before in deferred:
            if not section.is_attached:
                continue  # a rebuild replaced the form meanwhile (it defers its own hidden rows)
            await section.mount_all(rows, before=before if before is not None and before.is_attached else None)
            form = next((node for node in section.ancestors if isinstance(node, TabForm)), None)
            if form is not None and form not in forms:
                forms.append(form)
        for form in forms:
            self._tab_built(form)

    def hidden_by_choice(self, option: OptionInfo) -> bool:
        """Whether the family or optimizer chosen hides this option's row (update_objective_rows)."""
        objective = self.family_objective()
        family = str(self.document.get("model.family"))
        optimizer = str(self.document.get("optimizer.name") or "adamw")
        wanted = option.objective
        return (wanted is not None and objective is not None and wanted != objective) or (
            family in FAMILIES and option.family is not None and option.family != family) or (
            option.path.startswith("optimizer.") and not optimizer_reads(option.name, optimizer))  # d_coef: Prodigy

    def _tab_built(self, form: TabForm) -> None:
        """A tab's rows were mounted: show their marks, messages and hidden rows as the others'.
        The last whole-config check still holds (it reads the document, not the rows), so only the new
        rows are drawn: re-checking and redrawing every row for each tab built made a reload 50 % slower."""
        self._forget_rows()
        rows = self._row_map()
        try:
            for node in form.walk_children():
                if isinstance(node, FieldRow):
                    node.show(self._problems.get(node.path, ""))
                elif isinstance(node, ListEditor):
                    node.refresh_title()
            self.update_objective_rows(self._problems)
            self.update_sections()
            self._unplaced = [f"{k}: {m}" if k else m for k, m in self._problems.items() if k not in rows]
            self.update_status()
        except NoMatches:  # the app quit while the tab was built: the panels are gone already
            return
        self._show_essential_notes()

    async def on_tab_strip_chosen(self, message: TabStrip.Chosen) -> None:
        """A title clicked: that tab, with the cursor in it, as alt+n shows it. Left/right on the focused strip:
        the next tab, the cursor staying on the strip to go on browsing (as Textual's tabs do)."""
        message.stop()
        if message.pane_id is None:
            await self.action_switch_tab(message.step, into_form=False)
        else:
            await self.show_pane(message.pane_id)

    def on_resize(self, event: events.Resize) -> None:
        # Narrow: help and derived values under the form, not beside it, where they left the tab
        # bar 53 columns at 80x24 and hid tabs 6 and 7.
        self.set_class(event.size.width < NARROW_COLUMNS, "-narrow")

    # --- rows ------------------------------------------------------------------------------

    def rows(self) -> list[FieldRow]:
        return list(self._row_map().values())

    def _row_map(self) -> dict[str, FieldRow]:
        """Rows by key, found once per layout of the form (a DOM query costs ~15 ms here)."""
        if self._rows is None:
            self._rows, self._extras, self._lists, self._section_titles = {}, [], [], []
            # One walk, not four CSS queries: selector matching over ~1,500 widgets cost 0.3 s per lookup.
            for form in built_forms(self._tab_forms()):  # a tab being built has rows not composed yet
                for node in form.walk_children():
                    if isinstance(node, FieldRow):
                        self._rows[node.path] = node
                    elif isinstance(node, ExtraKeyRow):
                        self._extras.append(node)
                    elif isinstance(node, ListEditor):
                        self._lists.append(node)
                    elif isinstance(node, Static) and node.has_class("section-title"):
                        self._section_titles.append(node)
        return self._rows

    def _forget_rows(self) -> None:
        """The form's rows changed (list item added or removed, recompose)."""
        self._rows = None
        self._extras = None
        self._lists = None
        self._section_titles = None

    def extra_rows(self) -> list[ExtraKeyRow]:
        """The rows of keys the form has no row for (unknown keys, tables that are not tables)."""
        self._row_map()
        return list(self._extras or [])

    def extra_group(self, path: str) -> str:
        """The tab that lists an extra key: its table's tab, top-level and unknown tables on the first."""
        section = re.split(r"[.\[]", path, maxsplit=1)[0] if re.search(r"[.\[]", path) else ""
        return next((option.group for option in self.options if section_of(option) == section), self.groups[0])

    def focus_extra(self, path: str | None = None) -> bool:
        """Show the tab of an extra row (the first one by default) and put the cursor on its name."""
        extras = [row for row in self.extra_rows() if path is None or row.path == path]
        if not extras:
            return False
        self.query_one("#tabs", FormTabs).active = f"tab-{self.extra_group(extras[0].path)}"
        extras[0].name_input.focus()
        return True

    def row(self, path: str) -> FieldRow:
        """The row editing `path` (a key like training.learning_rate or data.concepts[0].path)."""
        try:
            return self._row_map()[path]
        except KeyError:
            raise LookupError(path) from None

    # --- validation and display ----------------------------------------------------------

    @property
    def validation_pending(self) -> bool:
        """A whole-config check is waiting for typing to pause."""
        return self._validate_timer is not None

    def schedule_validation(self) -> None:
        if self._validate_timer is not None:
            self._validate_timer.stop()
        self._validate_timer = self.set_timer(VALIDATE_DELAY, self.refresh_all)

    def refresh_all(self) -> None:
        """Re-validate the whole config and show every message, mark and derived value."""
        if self._validate_timer is not None:
            self._validate_timer.stop()
            self._validate_timer = None
        result = self.document.validate()
        self._last_result = result
        problems: dict[str, str] = {}
        if isinstance(result, ConfigError):
            for problem in result.problems:
                problems.setdefault(problem.key, problem.message)
        self._problems = problems
        rows = self._row_map()
        for path, row in rows.items():
            row.show(problems.get(path, ""))
        for extra in self._extras or []:
            inside = (m for k, m in problems.items() if k.startswith((extra.path + ".", extra.path + "[")))
            extra.show(problems.get(extra.path) or next(inside, ""))
        for editor in self._lists or []:
            editor.refresh_title()
        self.update_objective_rows(problems)
        self.update_sections()
        self._unplaced = [f"{k}: {m}" if k else m for k, m in problems.items() if k not in rows]
        self.update_status()
        self.update_derived(result)

    def family_objective(self) -> str | None:
        """The objective model.family trains with (None while the family is not a known one)."""
        info = FAMILIES.get(str(self.document.get("model.family")))
        return info.objective if info is not None else None

    def update_objective_rows(self, problems: dict[str, str]) -> None:
        """Hide the options of the objective model.family does not train with (flow-matching options for
        SDXL), other families' own sections ([flux] for SDXL) and other optimizers' settings (d_coef unless
        Prodigy); a hidden option with a problem shows, so that what blocks saving can be fixed."""
        for path, row in self._row_map().items():
            hide = self.hidden_by_choice(row.option) and path not in problems and path not in self.document.field_errors
            if row.has_class("other-objective") != hide:
                row.set_class(hide, "other-objective")

    def update_sections(self) -> None:
        """Dim the sections the chosen training.method does not use, and say so in their title; hide those
        whose every row the family hides."""
        method = self.document.get("training.method")
        self._row_map()
        for title in self._section_titles or []:
            name = title.name or ""
            used_by = METHOD_SECTIONS.get(name)
            unused = used_by is not None and used_by != method
            section = title.parent
            if isinstance(section, Widget):  # another family's section ([flux] for SDXL): its title goes too
                rows = [node for node in section.children if isinstance(node, FieldRow)]
                others = bool(rows) and all(row.has_class("other-objective") for row in rows)
                if section.has_class("other-objective") != others:
                    section.set_class(others, "other-objective")
            if section is not None and section.has_class("unused") != unused:
                section.set_class(unused, "unused")
                for row in section.query_children(FieldRow):
                    row.refresh()  # its label's colour (FieldRow._drawn_label)
            text = f"\\[{name}]"
            if used_by is not None:
                text += f"  not used: training.method is {method}" if unused else "  used by training.method"
            objective = self.family_objective() if name == "objective" else None
            if objective is not None:
                family = self.document.get("model.family")
                text += f"  {family} trains with {OBJECTIVE_WORDS.get(objective, objective)}: its options"
            if str(title.content) != text:
                title.update(text)

    def _update_text(self, widget_id: str, text: str) -> None:
        """Update a panel only when its text changes, and lay the screen out only when the panel's height does.

        A panel missing is skipped, not an error: the step scan's thread can answer while a
        rebuild's recompose has the panels unmounted (or the screen is closing); the rebuild
        draws every panel again from the state this call already stored."""
        if self._shown_text.get(widget_id) != text:
            panels = self.query(f"#{widget_id}").results(Static)
            panel = next(panels, None)
            if panel is None:
                return
            self._shown_text[widget_id] = text
            # A layout re-arranges the whole screen (90 ms on the Training tab): only when the panel's height
            # follows its text and that height changes. The help panel fills the side panel above the derived
            # values (beside the form), so moving from field to field redraws the help alone.
            height = panel.size.height
            panel.update(text, layout=False)
            fits_text = panel.styles.height is None or panel.styles.height.is_auto
            if not panel.size.width or (
                    fits_text and panel.get_content_height(panel.size, self.app.size, panel.size.width) != height):
                panel.refresh(layout=True)

    def update_status(self) -> None:
        self._update_text("status", self.status_text())

    def status_text(self) -> str:
        doc = self.document
        parts = [shown_path(doc.path)]
        preset = doc.get("preset")
        parts.append(f"preset {preset}" if preset else "no preset")
        parts.append("unsaved changes" if doc.dirty else "saved")
        if self._unplaced:
            parts.append("problem: " + self._unplaced[0])
        if self._disk_warned:
            parts.append("CHANGED ON DISK: ctrl+l reloads")
        return "  ·  ".join(parts)

    def update_derived(self, result: object) -> None:
        step_inputs = [repr(self.document.get(k)) for k in STEP_KEYS]
        if not isinstance(result, ConfigError) and step_inputs != self._last_step_inputs:
            self._last_step_inputs = step_inputs
            self._steps_text = "steps: scanning…"
            self.scan_steps(result)
        elif isinstance(result, ConfigError):
            self._last_step_inputs = None
            self._steps_text = "steps: fix the config to count them"
        self._update_text("derived", self.derived_text())

    def derived_text(self) -> str:
        """The side panel's derived values: effective batch, steps (as last scanned), VRAM, LR curve."""
        estimate = estimate_vram(self.document.data)
        defaults = {o.path: o.default for o in self.options}
        value = lambda p: self.document.get(p) if self.document.get(p) is not None else defaults.get(p)  # noqa: E731
        curve = lr_preview(value, self._total_steps)
        return (f"[b]What follows[/b]\n{escape(effective_batch_text(value))}\n{escape(self._steps_text)}"
                f"\n\n[b]VRAM[/b]\n{escape(estimate.describe())}"
                f"\n\n[b]Learning rate[/b]\n{escape(curve)}\n{escape(lr_note(value))}")

    @work(thread=True, exclusive=True, group="preflight")
    def scan_steps(self, config: object) -> None:
        """Count steps from the pre-flight scan of the data folders (in a thread: folders can be big)."""
        from tuitrain.dataspec import config_preflight

        total = None
        try:
            report = config_preflight(config, self.document.base_dir, full_check=False)  # type: ignore[arg-type]
            total = report.total_steps or None
            if not report.concepts or not report.steps_per_epoch:
                text = "steps: no images found yet" if report.concepts else "steps: add a data folder"
            else:
                text = (f"steps per epoch: {report.steps_per_epoch}\n"
                        f"total steps: {report.total_steps} ({report.epochs} epochs)")
        except Exception as exc:  # a scan problem is shown, never fatal to the form
            text = f"steps: cannot scan ({exc})"
        self.app.call_from_thread(self._show_steps, text, total)

    def _show_steps(self, text: str, total: int | None = None) -> None:
        self._steps_text = text
        self._total_steps = total
        self.update_derived(self._last_result)

    def on_field_row_edited(self, event: FieldRow.Edited) -> None:
        self._close_armed = False
        row = event.row
        if event.typing:
            # The key's own check is shown now; the schema problem on this row was about the
            # old value, so it goes until the whole-config check runs once typing pauses.
            self._problems.pop(row.path, None)
            row.show()
            self.update_status()
            self.schedule_validation()
        else:
            self.refresh_all()
        self.show_help(row)

    def on_list_editor_resized(self, event: ListEditor.Resized) -> None:
        self._forget_rows()
        self.refresh_all()

    def on_extra_key_row_edited(self, event: ExtraKeyRow.Edited) -> None:
        self._close_armed = False
        event.row.show("")
        self.update_status()
        self.schedule_validation()

    async def on_extra_key_row_fix(self, event: ExtraKeyRow.Fix) -> None:
        """Rename or delete a key the form has no row for, then lay the form out again."""
        event.stop()
        old, new = event.row.path, event.new_path
        try:
            if new is None:
                self.document.delete(old)
            else:
                self.document.rename(old, new)
        except ValueError as exc:
            self.notify(str(exc), title=f"{old} not renamed", severity="error", timeout=10)
            return
        self._close_armed = False
        what = "put back to the preset's value" if new is None and is_known(old) else "deleted"
        await self._rebuild(f"{old} {what}" if new is None else f"Renamed {old} to {new}", focus=new)

    def on_descendant_focus(self, event: DescendantFocus) -> None:
        node = event.widget
        while node is not None and not isinstance(node, (FieldRow, ExtraKeyRow)):
            node = node.parent  # type: ignore[assignment]
        if isinstance(node, FieldRow):
            self.show_help(node)
        elif isinstance(node, ExtraKeyRow):
            self.show_extra_help(node)

    def show_extra_help(self, row: ExtraKeyRow) -> None:
        """What is wrong with a key the form has no row for, and the three ways out."""
        path = escape(row.path)
        if is_known(row.path):
            lines = [f"[b]{path}[/b]  (a table in the schema)", "It holds a value instead of a table: write "
                     "one as { key = value, ... }, or Delete to put the preset's value back."]
        else:
            lines = [f"[b]{path}[/b]  (not an option)", "tuitrain does not know this key, so the config cannot "
                     "be saved while it is there."]
            if row.suggestion:
                lines.append(f"Did you mean [b]{escape(row.suggestion)}[/b]? The Rename button moves the value there.")
            lines.append("Edit the name and press Enter to move the value to another key, or Delete it.")
        self._update_text("help", "\n".join(lines))

    def show_help(self, row: FieldRow) -> None:
        self._update_text("help", self.help_text(row.option, row.path))

    def help_text(self, option: OptionInfo, path: str) -> str:
        """Help text, default, preset value and allowed range of the field being edited."""
        lines = [f"[b]{escape(path)}[/b]  ({escape(option.type_name)}, {option.level})", escape(option.help)]
        default = "required" if repr(option.default) == "PydanticUndefined" else format_value(option.default) or "(empty)"
        lines.append(f"default: {escape(default)}")
        preset_value = self.document.baseline_value(path)
        if self.document.get("preset") and "[" not in path:
            lines.append(f"preset: {escape(format_value(preset_value) or '(empty)')}")
        if rng := range_text(option):
            lines.append(f"allowed: {escape(rng)}")
        used_by = METHOD_SECTIONS.get(section_of(option))
        if used_by is not None and used_by != self.document.get("training.method"):
            lines.append(f"not used while training.method is {escape(str(self.document.get('training.method')))}")
        if option.objective is not None:
            lines.append(f"used by {OBJECTIVE_WORDS.get(option.objective, option.objective)} families only")
        if option.family is not None:
            lines.append(f"used by {escape(option.family)} models only")
        if self.document.row_differs_from_preset(path):  # the row's ● mark
            lines.append("[b]●[/b] differs from the preset: ctrl+r resets it")
        return "\n".join(lines)

    # --- tabs ------------------------------------------------------------------------------

    async def action_next_field(self, step: int) -> None:
        """Move the cursor as Textual's tab and shift+tab do; a row reached gets its editor, and the key
        after this one lands in it (the row's own hand-over on focus runs later, from its queue)."""
        widget = self.focus_next() if step > 0 else self.focus_previous()
        if isinstance(widget, FieldRow):
            self.set_focus(await widget.open_editor())
            self.show_help(widget)  # in this frame (see show_pane)

    async def action_switch_tab(self, step: int, into_form: bool = True) -> None:
        tabs = self.query_one("#tabs", FormTabs)
        ids = tabs.pane_ids
        current = ids.index(tabs.active) if tabs.active in ids else 0
        await self.show_pane(ids[(current + step) % len(ids)], into_form=into_form)

    async def action_show_tab(self, number: int) -> None:
        if 1 <= number <= len(self.groups):
            await self.show_pane(f"tab-{self.groups[number - 1]}")

    async def show_pane(self, pane_id: str, into_form: bool = True) -> None:
        """Show a tab and put the cursor in its first visible field (unless not `into_form`), so typing goes there.

        A tab not built yet is built first; the key that asked waits for it (the app reads the
        next key after), and focus is asked for now, not after the next refresh: a key typed
        right after the tab key must already land in the new tab.
        """
        form = self.query_one(f"#{pane_id}", TabForm)
        self._builder.wanted = form.group
        await self._builder.build(form)
        if not into_form:
            self.query_one("#tabs", FormTabs).active = pane_id
            return
        essential = self.has_class("essential-only")
        first = None
        for row in form.query(FieldRow):
            hidden = row.has_class("other-objective") or (essential and (
                row.has_class("advanced") or (row.parent is not None and row.parent.has_class("unused"))))
            if not hidden and shown_within(row, form):  # classes: a row built just now has no new styles yet
                first = row
                break
        # The row's editor is mounted while the tab is still hidden, so showing the tab lays it out with the
        # others: mounted after, it cost a second layout and frame before the cursor appeared.
        editor = await first.open_editor() if first is not None else None
        self.query_one("#tabs", FormTabs).active = pane_id
        if first is not None and editor is not None:
            self.set_focus(editor)
            # Now, not from DescendantFocus: that message climbs the DOM one queue at a time and reached the
            # screen after the tab's frame was drawn, so the help panel followed a frame (30-60 ms) later.
            self.show_help(first)

    # --- actions ---------------------------------------------------------------------------

    async def action_save(self) -> None:
        error = self.document.save()
        if error is not None:
            self.notify("\n".join(error.lines()), title="Not saved", severity="error", timeout=12)
            return
        self.saved_once = True
        self._disk_warned = False
        self.notify(f"Saved {self.document.path}", title="Saved")
        if self.extra_rows():  # fixed by editing their values: the rows go, the form shows the keys
            await self._rebuild()
        else:
            self.refresh_all()

    def _show_essential_notes(self) -> None:
        for note in self.query(".essential-note"):
            note.display = self.has_class("essential-only")

    def action_toggle_view(self) -> None:
        self.toggle_class("essential-only")
        view = "essential options only" if self.has_class("essential-only") else "all options"
        self.notify(f"Showing {view}", timeout=3)
        self._show_essential_notes()
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

    async def _rebuild(self, message: str = "", focus: str | None = None) -> None:
        """Recompose the form from the document, staying on the same tab; the cursor goes to
        the row of `focus` when there is one, else to a key the form cannot show."""
        active = self.query_one("#tabs", FormTabs).active
        focus_group = next((o.group for o in self.options if o.path == focus), None)
        self._also_eager = {g for g in (active.removeprefix("tab-"), focus_group) if g}  # composed with the screen
        self._builder.wanted = None
        self._forget_rows()
        self._last_step_inputs = None
        self._shown_text.clear()
        await self.recompose()
        self._defer_hidden = False  # the tabs composed with the form are mounted; later ones build whole
        self._forget_rows()
        self.refresh_all()
        self._show_essential_notes()
        self._builder.start()  # the other tabs, after this frame
        target = self._row_map().get(focus or "")
        if target is not None:
            await self.show_pane(f"tab-{target.option.group}")
            self.set_focus(await target.open_editor())
        elif not self.focus_extra(focus) and not self.focus_extra() and active:
            await self.show_pane(active)
        if message:
            self.notify(message)

    async def action_reload(self) -> None:
        try:
            self.document = ConfigDocument.open(self.config_path)
        except ConfigError as exc:
            self.notify("\n".join(exc.lines()), title="Cannot reload", severity="error", timeout=12)
            return
        self._disk_warned = False
        await self._rebuild(f"Reloaded {self.config_path}")

    def action_load_preset(self) -> None:
        from tuitrain.config.presets import list_presets

        current = str(self.document.get("preset") or "")
        self.app.push_screen(PresetPicker(list_presets(), current), self._preset_picked)

    def _preset_picked(self, name: str | None) -> None:
        if not name:
            return
        if not self.document.dirty:
            self.run_worker(self.load_preset(name), exclusive=True, group="load-preset")
            return

        def answered(load: bool | None) -> None:
            if load:
                self.run_worker(self.load_preset(name), exclusive=True, group="load-preset")

        self.app.push_screen(
            ConfirmDialog(
                "Unsaved changes",
                f"Load preset {name}? The form's unsaved changes are replaced by the preset's values "
                "(data folders and sample prompts stay). The file is not touched until ctrl+s.",
                yes="Load",
            ),
            answered,
        )

    async def load_preset(self, name: str) -> None:
        self.document.load_preset(name)
        await self._rebuild(f"Loaded preset {name}: ● now marks values that differ from it; ctrl+s saves")

    def action_save_preset(self) -> None:
        from tuitrain.config.presets import list_presets

        result = self.document.validate()
        if isinstance(result, ConfigError):
            self.notify("Fix these first:\n" + "\n".join(result.lines()), title="Cannot save as a preset",
                        severity="error", timeout=12)
            return
        description = str(self.document.get("description") or "")
        self.app.push_screen(SavePresetDialog(list_presets(), "", description), self._save_preset)

    def _save_preset(self, answer: tuple[str, str] | None) -> None:
        if answer is None:
            return
        from tuitrain.config.presets import PresetNameError, save_user_preset

        name, description = answer
        try:
            path = save_user_preset(name, self.document.preset_data(), description, overwrite=True)
        except (PresetNameError, ConfigError, OSError) as exc:
            self.notify(str(exc), title="Preset not saved", severity="error", timeout=12)
            return
        self.notify(f"Saved preset {name} to {path}. Use it: tuitrain new RUN --preset {name}",
                    title="Preset saved", timeout=8)

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
        dismiss_or_exit(self, self.saved_once)
