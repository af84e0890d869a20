"""`tuitrain config`'s app: the editor on its own, with the user's theme and keys (like AttachApp)."""

from __future__ import annotations

from pathlib import Path

from tuitrain.settings import DEFAULT_THEME, LoadedSettings, load_settings
from tuitrain.tui.config_editor.screen import ConfigEditorScreen
from tuitrain.tui.key_order import KeyOrderApp
from tuitrain.tui.themes import available_themes


class ConfigEditorApp(KeyOrderApp[bool]):
    """Shows one config's editor; returns True when it was saved."""

    TITLE = "tuitrain config"

    def __init__(self, config_path: Path, settings: LoadedSettings | None = None) -> None:
        super().__init__()
        self.config_path = Path(config_path)
        self.sub_title = str(config_path)
        self.loaded_settings = settings or load_settings()

    def on_mount(self) -> None:
        themes, problems = available_themes()
        for theme in themes:
            self.register_theme(theme)
        for name in (self.loaded_settings.settings.theme, DEFAULT_THEME):
            if name in self.available_themes:
                self.theme = name
                break
        self._apply_keymap()
        for message in [*self.loaded_settings.problems, *problems]:
            self.notify(message, title="Settings", severity="warning", timeout=10)
        self.push_screen(ConfigEditorScreen(self.config_path), self.exit)

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
