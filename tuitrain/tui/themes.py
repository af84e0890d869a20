"""Themes as TOML files: built-in ones from themes/, the user's from ~/.config/tuitrain/themes/.

Each file holds textual.theme.Theme's arguments. A broken user theme becomes a
message, never a crash; a user theme with a built-in's name replaces it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.theme import Theme

from tuitrain.config.errors import one_line, shorten
from tuitrain.resources import data_dir, user_config_dir

from tuitrain.tomlcompat import tomllib

_FIELDS = {
    "name", "primary", "secondary", "warning", "error", "success", "accent", "foreground",
    "background", "surface", "panel", "boost", "dark", "luminosity_spread", "text_alpha", "variables", "ansi",
}


class ThemeFileError(ValueError):
    pass


def user_themes_dir() -> Path:
    return user_config_dir() / "themes"


def load_theme(path: Path) -> Theme:
    """One theme file as a Theme; ThemeFileError names the file and the key at fault."""
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ThemeFileError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ThemeFileError(f"{path}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise ThemeFileError(f"{path}: unknown theme key(s) {shorten(one_line(', '.join(unknown)), 120)}")
    data.setdefault("name", path.stem)
    if "primary" not in data:
        raise ThemeFileError(f"{path}: primary: required")
    try:
        theme = Theme(**data)
        theme.to_color_system().generate()  # a bad colour fails here, not later in the app
    except Exception as exc:  # Theme and Color raise several types on bad values, echoing them whole
        raise ThemeFileError(f"{path}: {shorten(one_line(str(exc)), 200)}") from None
    return theme


def available_themes() -> tuple[list[Theme], list[str]]:
    """(themes, one message per theme file that could not be loaded)."""
    themes: dict[str, Theme] = {}
    problems: list[str] = []
    for folder in (data_dir("themes"), user_themes_dir()):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.toml")):
            try:
                theme = load_theme(path)
            except ThemeFileError as exc:
                problems.append(str(exc))
                continue
            themes[theme.name] = theme
    return list(themes.values()), problems
