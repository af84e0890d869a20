"""Themes as TOML files: the four shipped ones, the user's own, and broken ones."""

from __future__ import annotations

from pathlib import Path

from tuitrain.resources import data_dir
from tuitrain.tui.themes import available_themes, load_theme, user_themes_dir


def test_shipped_themes_load() -> None:
    themes, problems = available_themes()
    assert problems == []
    by_name = {theme.name: theme for theme in themes}
    assert {"tuitrain-dark", "tuitrain-light", "tuitrain-high-contrast", "tuitrain-ansi"} <= set(by_name)
    assert by_name["tuitrain-light"].dark is False
    assert by_name["tuitrain-ansi"].ansi is True and by_name["tuitrain-ansi"].primary.startswith("ansi_")
    assert len(list(data_dir("themes").glob("*.toml"))) == 4


def test_user_themes_are_added_and_may_replace_a_shipped_one() -> None:
    folder = user_themes_dir()
    folder.mkdir(parents=True)
    (folder / "mine.toml").write_text('primary = "#ff8800"\ndark = false\n')
    (folder / "tuitrain-dark.toml").write_text('name = "tuitrain-dark"\nprimary = "#00ff00"\n')
    themes, problems = available_themes()
    by_name = {theme.name: theme for theme in themes}
    assert problems == []
    assert by_name["mine"].primary == "#ff8800"  # named after the file when it has no name
    assert by_name["tuitrain-dark"].primary == "#00ff00"


def test_broken_user_themes_are_reported_not_raised(tmp_path: Path) -> None:
    folder = user_themes_dir()
    folder.mkdir(parents=True)
    (folder / "typo.toml").write_text('primry = "#ff0000"\n')
    (folder / "nocolour.toml").write_text('primary = "not a colour"\n')
    (folder / "syntax.toml").write_text("primary = \n")
    themes, problems = available_themes()
    text = "\n".join(problems)
    assert "typo.toml: unknown theme key(s) primry" in text
    assert "nocolour.toml" in text and "syntax.toml: not valid TOML" in text
    assert "tuitrain-dark" in {theme.name for theme in themes}
    assert load_theme(data_dir("themes") / "tuitrain-high-contrast.toml").background == "#000000"
