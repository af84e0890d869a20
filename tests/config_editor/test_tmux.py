"""A real terminal: `tuitrain config FILE` in tmux, one field edited with keys, Ctrl+S, quit.

tmux runs on a private socket with a fixed size (as tests/tui/test_tmux.py does), so the
test never touches a tmux the developer is using. The TOML on disk is checked afterwards:
the edited value changed and nothing else did.
"""

from __future__ import annotations

from pathlib import Path

from tests.tmux import Tmux
from tuitrain.config import load_config
from tuitrain.config.io import config_data


def test_edit_and_save_a_field_in_tmux(tmux: Tmux, run_config: Path) -> None:
    text = run_config.read_text().replace("version = 1\n", "version = 1\n# my note\n", 1)
    run_config.write_text(text.replace("rank = 32\n", "rank = 32  # keep small\n", 1))
    before = config_data(load_config(run_config))
    tmux.start_tuitrain("config", str(run_config))

    tmux.wait_for("preset sdxl-lora", "saved", "1 Model", "^s Save")
    tmux.keys("M-5")  # alt+5: the Method tab, cursor in its first field (lora.type)
    tmux.wait_for("[lora]", "used by training.method", "lora.type")
    tmux.keys("Tab", "Tab")  # lokr_factor, then rank
    tmux.wait_for("lora.rank")  # the help panel follows the cursor
    tmux.keys("C-a", "C-k")
    # The field's own check, at once (keys sent in one burst: tests/config_editor/test_key_bursts.py).
    tmux.wait_for("must be a whole number, got ''")
    tmux.keys("-l", "8")
    tmux.wait_for("unsaved changes", "● rank")
    tmux.keys("C-s")
    tmux.wait_for("Saved", "  ·  saved")
    tmux.keys("Escape")  # nothing unsaved: closes at once
    tmux.wait_closed()

    after = config_data(load_config(run_config))
    assert after["lora"]["rank"] == 8
    assert "version = 1\n# my note\n" in run_config.read_text()  # the user's comments survive saving
    assert "rank = 8  # keep small\n" in run_config.read_text()
    before["lora"]["rank"] = 8
    assert after == before  # nothing but the edited value changed


def test_last_tab_and_help_key_at_80x24_in_tmux(tmux: Tmux, run_config: Path) -> None:
    """At 80x24 the tab bar shows all seven tabs (the side panel goes under the form) and the footer
    ends with the help key."""
    tmux.start_tuitrain("config", str(run_config), size=(80, 24))
    tmux.wait_for("1 Model", "6 Sampling", "7 Saving", "f1 Keys", "model.family")
    tmux.keys("M-7")
    tmux.wait_for("saving.")  # the last tab's first field, its help under the form
    tmux.keys("Escape")
    tmux.wait_closed()
