"""The `?` overlay: every key of the screen it was opened from, with the id to remap it by."""

from __future__ import annotations

from collections.abc import Iterable

from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import ActiveBinding, Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tuitrain.settings import settings_path


def binding_rows(active: Iterable[ActiveBinding], key_display: dict[str, str]) -> list[tuple[str, str, str, str]]:
    """(where, what, keys, id) per action, keys of one action together, in binding order."""
    rows: dict[tuple[str, str], list[str]] = {}
    info: dict[tuple[str, str], tuple[str, str, str]] = {}
    for item in active:
        binding: Binding = item.binding
        where = getattr(item.node, "HELP_GROUP", "") or type(item.node).__name__
        group = (where, binding.id or binding.action)
        rows.setdefault(group, [])
        key = key_display.get(binding.key, binding.key)
        if key not in rows[group]:
            rows[group].append(key)
        info.setdefault(group, (where, binding.description or binding.action, binding.id or ""))
    return [(info[g][0], info[g][1], ", ".join(keys), info[g][2]) for g, keys in rows.items()]


class HelpScreen(ModalScreen[None]):
    """Lists the bindings collected from the screen underneath (its focus chain and the app)."""

    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close", id="help.close")]

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 90; max-width: 100%; height: auto; max-height: 95%;
        border: round $primary; background: $surface; padding: 0 1;
    }
    """

    def __init__(self, title: str, rows: list[tuple[str, str, str, str]], notes: list[str]) -> None:
        super().__init__()
        self.title_text = title
        self.rows = rows
        self.notes = notes

    def compose(self) -> ComposeResult:
        table = Table(box=None, expand=True, show_header=True, header_style="bold", pad_edge=False)
        table.add_column("key", no_wrap=True, ratio=2)
        table.add_column("does", ratio=3)
        table.add_column("id (for settings.toml)", no_wrap=True, ratio=2, style="dim")
        last_where = None
        for where, what, keys, binding_id in self.rows:
            if where != last_where:
                table.add_row(Text(where, style="bold underline"), "", "")
                last_where = where
            table.add_row(keys, what, binding_id)
        footer = Text.assemble(
            ("\nRemap any key in ", "dim"),
            (str(settings_path()), ""),
            (':\n  [keys]\n  "review.next" = "right,j"\n', "dim"),
            *[(note + "\n", "dim") for note in self.notes],
        )
        with VerticalScroll() as scroll:
            scroll.border_title = self.title_text
            scroll.border_subtitle = "Esc closes"
            yield Static(table, id="help-table")
            yield Static(footer, id="help-notes")


def help_screen_for(app: App[object], extra_rows: list[tuple[str, str, str, str]] | None = None,
                    notes: list[str] | None = None) -> HelpScreen | None:
    """The key overlay for the app's current screen (None when it is already showing)."""
    screen = app.screen
    if isinstance(screen, HelpScreen):
        return None
    keys = {key: app.get_key_display(active.binding) for key, active in screen.active_bindings.items()}
    rows = binding_rows(screen.active_bindings.values(), keys)
    ids = {row[3] for row in rows}
    rows += [row for row in extra_rows or [] if row[3] not in ids]
    title = f"Keys: {getattr(screen, 'HELP_GROUP', '') or type(screen).__name__}"
    own = getattr(screen, "help_notes", None)  # what a screen's keys do that a one-line description cannot say
    return HelpScreen(title, rows, [*(own() if callable(own) else []), *(notes or [])])
