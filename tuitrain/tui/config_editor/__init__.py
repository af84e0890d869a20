"""The config editor: a form generated from the config schema (issue 7). Never imports torch."""

from tuitrain.tui.config_editor.screen import ConfigEditorScreen

__all__ = ["ConfigEditorScreen"]
