"""Themes as TOML files: built-in ones from themes/, the user's from ~/.config/tuitrain/themes/."""

from __future__ import annotations

from pathlib import Path

from textual.theme import Theme

from tuitrain.resources import data_dir, user_config_dir

_FIELDS = {
    "name", "primary", "secondary", "warning", "error", "success", "accent", "foreground",
    "background", "surface", "panel", "boost", "dark", "luminosity_spread", "text_alpha", "variables", "ansi",
}


class ThemeFileError(ValueError):
    pass


def load_theme(path: Path) -> Theme:
    from tuitrain.config.io import read_toml

    data = read_toml(path)
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise ThemeFileError(f"{path}: unknown theme key(s) {', '.join(unknown)}")
    data.setdefault("name", path.stem)
    if "primary" not in data:
        raise ThemeFileError(f"{path}: primary: required")
    try:
        return Theme(**data)
    except (TypeError, ValueError) as exc:
        raise ThemeFileError(f"{path}: {exc}") from None


def available_themes() -> tuple[list[Theme], list[str]]:
    """(themes, one message per theme file that could not be loaded)."""
    themes: dict[str, Theme] = {}
    problems: list[str] = []
    for folder in (data_dir("themes"), user_config_dir() / "themes"):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.toml")):
            try:
                theme = load_theme(path)
            except Exception as exc:  # a broken user theme must not stop the app
                problems.append(str(exc))
                continue
            themes[theme.name] = theme
    return list(themes.values()), problems
