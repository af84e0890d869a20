"""The tuitrain Textual app: themes, user settings and key remapping, help, and the first screen.

Never imports torch: the trainer is another process. Screens are imported when
first shown, so `tuitrain` draws its first frame without loading the review's
image stack.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.app import SystemCommand
from textual.binding import Binding
from textual.dom import DOMNode
from textual.screen import Screen

from tuitrain.settings import LoadedSettings, load_settings
from tuitrain.tui.base_app import BaseApp
from tuitrain.tui.home import ConfirmDelete, HomeScreen
from tuitrain.tui.image_protocol import CONCRETE, ProtocolChoice, requested_protocol

if TYPE_CHECKING:
    from tuitrain.tui.review.source import ReviewSource

__all__ = ["HomeScreen", "TuitrainApp", "known_binding_ids"]


def _binding_classes() -> list[type[DOMNode]]:
    from tuitrain.tui.config_editor import ConfigEditorScreen
    from tuitrain.tui.config_editor.dialogs import ConfirmDialog, PresetPicker, SavePresetDialog
    from tuitrain.tui.dashboard import DashboardScreen
    from tuitrain.tui.dashboard.dialogs import ConfirmStop, FinishedChoice, QuitChoice
    from tuitrain.tui.help import HelpScreen
    from tuitrain.tui.new_run import NewRunScreen
    from tuitrain.tui.review.report import ReportScreen
    from tuitrain.tui.review.screen import FilterInput, ReviewScreen
    from tuitrain.tui.review.widgets import CaptionEditor

    return [
        TuitrainApp, HomeScreen, ReviewScreen, CaptionEditor, FilterInput, ReportScreen, HelpScreen, NewRunScreen,
        DashboardScreen, ConfirmStop, QuitChoice, FinishedChoice, ConfigEditorScreen, PresetPicker, ConfirmDialog,
        SavePresetDialog, ConfirmDelete,
    ]


PALETTE_ID = "app.command_palette"  # Textual's palette key is a class setting, not a Binding with an id


def known_binding_ids() -> dict[str, Binding]:
    """Every remappable binding, by id (what [keys] in settings.toml may name)."""
    found: dict[str, Binding] = {PALETTE_ID: Binding("ctrl+p", "command_palette", "Command palette", id=PALETTE_ID)}
    for cls in _binding_classes():
        for binding in cls.BINDINGS:
            if isinstance(binding, Binding) and binding.id:
                found.setdefault(binding.id, binding)
    return found


def default_protocol(loaded: LoadedSettings) -> ProtocolChoice:
    """Without a choice made before start-up (tests, embedding), no probing: a fixed protocol."""
    try:
        requested = requested_protocol(loaded.settings.image_protocol)
    except ValueError:
        requested = "halfcell"
    protocol = requested if requested in CONCRETE else "halfcell"
    return ProtocolChoice(protocol, requested, "not probed: half-cells" if protocol != requested else "chosen")


class TuitrainApp(BaseApp[None]):
    TITLE = "tuitrain"
    HELP_GROUP = "Everywhere"
    BINDINGS = [
        Binding("question_mark", "help", "Help", id="app.help"),
        Binding("q", "quit", "Quit", id="app.quit"),
    ]

    def __init__(
        self,
        workspace: Path,
        *,
        review: ReviewSource | None = None,
        image_protocol: ProtocolChoice | None = None,
        settings: LoadedSettings | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        loaded = settings or load_settings()
        if palette := loaded.settings.keys.get(PALETTE_ID):
            self.COMMAND_PALETTE_BINDING = palette  # read by App.__init__
        super().__init__(settings=loaded)
        self.workspace = workspace
        self.review_source = review
        self.image_protocol = image_protocol or default_protocol(self.loaded_settings)
        self.cache_dir = cache_dir
        self._reported_clashes: set[frozenset[str]] = set()

    # --- start-up --------------------------------------------------------------------

    def first_screen(self) -> Screen[Any]:
        """`tuitrain cull DIR` opens on the review; `tuitrain` on the runs of the workspace."""
        if self.review_source is not None:
            from tuitrain.tui.review.screen import ReviewScreen

            return ReviewScreen(self.review_source, self.image_protocol.protocol, cache_dir=self.cache_dir)
        return HomeScreen(self.workspace)

    def on_mount(self) -> None:
        for message in self._apply_keymap():
            self.notify(message, title="Settings", severity="warning", timeout=12)

    def _apply_keymap(self) -> list[str]:
        if not self.loaded_settings.settings.keys:
            return []
        known = known_binding_ids()
        keymap: dict[str, str] = {}
        problems = []
        for binding_id, keys in self.loaded_settings.settings.keys.items():
            if binding_id == PALETTE_ID:
                continue  # applied in __init__
            if binding_id in known:
                keymap[binding_id] = keys
                continue
            near = difflib.get_close_matches(binding_id, list(known), n=1)
            hint = f" (did you mean {near[0]}?)" if near else " (press ? to see the ids)"
            problems.append(f"keys.{binding_id}: no such binding{hint}")
        if keymap:
            self.set_keymap(keymap)
        return problems

    def handle_bindings_clash(self, clashed_bindings: set[Binding], node: DOMNode) -> None:
        """A remapped key that another binding already uses: say so once, naming both."""
        names = frozenset(f"{b.id or b.action} ({b.key})" for b in clashed_bindings)
        if names in self._reported_clashes:
            return
        self._reported_clashes.add(names)
        self.notify(
            "keys: the remapped key is also bound to " + ", ".join(sorted(names)) + "; the remapped one wins",
            title="Settings",
            severity="warning",
            timeout=12,
        )

    # --- help and command palette ---------------------------------------------------

    def action_help(self) -> None:
        from tuitrain.tui.help import help_screen_for

        overlay = help_screen_for(
            self,
            extra_rows=[("Everywhere", "Command palette", self.COMMAND_PALETTE_BINDING, PALETTE_ID)],
            notes=[
                f"Image protocol: {self.image_protocol.protocol} ({self.image_protocol.reason}); "
                "set image_protocol in settings.toml or TUITRAIN_IMAGE_PROTOCOL."
            ],
        )
        if overlay is not None:
            self.push_screen(overlay)

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """Textual's commands (Theme, Quit, ...) plus every action of the current screen."""
        yield from super().get_system_commands(screen)
        yield SystemCommand("Help", "Every key binding of this screen", self.action_help)
        seen: set[str] = set()
        for active in screen.active_bindings.values():
            binding = active.binding
            if active.node is self or not binding.description or binding.action in seen:
                continue
            seen.add(binding.action)
            callback = partial(self.run_action, binding.action, active.node)
            yield SystemCommand(binding.description, f"{binding.id or binding.action}  (key: {binding.key})", callback)
