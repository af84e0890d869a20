"""`tuitrain config`'s app: the editor on its own, with the user's theme (like AttachApp)."""

from __future__ import annotations

from pathlib import Path

from textual.app import App

from tuitrain.settings import DEFAULT_THEME, LoadedSettings, load_settings
from tuitrain.tui.config_editor.screen import ConfigEditorScreen
from tuitrain.tui.themes import available_themes


class ConfigEditorApp(App[bool]):
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
        for message in [*self.loaded_settings.problems, *problems]:
            self.notify(message, title="Settings", severity="warning", timeout=10)
        self.push_screen(ConfigEditorScreen(self.config_path), self.exit)
