"""`tuitrain config`'s app: the editor on its own, with the user's theme and keys (like AttachApp)."""

from __future__ import annotations

from pathlib import Path

from tuitrain.settings import LoadedSettings
from tuitrain.tui.base_app import BaseApp
from tuitrain.tui.config_editor.screen import ConfigEditorScreen


class ConfigEditorApp(BaseApp[bool]):
    """Shows one config's editor; returns True when it was saved."""

    TITLE = "tuitrain config"

    def __init__(self, config_path: Path, settings: LoadedSettings | None = None) -> None:
        super().__init__(settings=settings)
        self.config_path = Path(config_path)
        self.sub_title = str(config_path)

    def first_screen(self) -> ConfigEditorScreen:
        return ConfigEditorScreen(self.config_path)

    def on_mount(self) -> None:
        self._apply_keymap()

    def _apply_keymap(self) -> None:
        """The user's [keys] remaps of the editor's bindings (the full app reports unknown ids)."""
        wanted = self.loaded_settings.settings.keys
        if not wanted:
            return
        ids = {b.id for b in ConfigEditorScreen.BINDINGS if getattr(b, "id", None)}
        keymap = {binding_id: keys for binding_id, keys in wanted.items() if binding_id in ids}
        if keymap:
            self.set_keymap(keymap)

    def action_help(self) -> None:
        """F1: every key of the editor, as the full app's `?` overlay lists them."""
        from tuitrain.tui.help import help_screen_for

        overlay = help_screen_for(self)
        if overlay is not None:
            self.push_screen(overlay)
