"""Generated docs stay in sync with the schema."""

from __future__ import annotations

from pathlib import Path

from tuitrain.config.docs import render
from tuitrain.config.options import iter_options

REPO = Path(__file__).resolve().parents[1]


def test_options_reference_is_current() -> None:
    on_disk = (REPO / "docs" / "options.md").read_text()
    assert on_disk == render(), "docs/options.md is stale: python -m tuitrain.config.docs > docs/options.md"


def test_every_option_is_documented() -> None:
    text = (REPO / "docs" / "options.md").read_text()
    for opt in iter_options():
        assert f"| `{opt.path}` |" in text
