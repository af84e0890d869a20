"""Keys typed in a burst (as they arrive over SSH) land where they were typed, in order.

tmux's send-keys with several keys writes them to the terminal at once, so the app reads
them in one go, as it does the keys of a fast typist on a slow link. Pilot.press waits
after every key and never shows the problem; `burst` posts all keys before the first is
handled.
"""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input

from tests.config_editor.conftest import SIZE, editor, wait_for
from tests.tmux import Tmux
from tests.tui.conftest import burst
from tuitrain.config import load_config
from tuitrain.config.io import config_data
from tuitrain.tui.config_editor.app import ConfigEditorApp
from tuitrain.tui.config_editor.form_tabs import FormTabs


def save_and_close(tmux: Tmux) -> None:
    tmux.wait_for("unsaved changes")
    tmux.keys("C-s")
    tmux.wait_for("Saved", "  ·  saved")
    tmux.keys("Escape")
    tmux.wait_closed()


def test_tab_then_digits_in_one_burst_go_to_the_next_fields(tmux: Tmux, run_config: Path) -> None:
    before = config_data(load_config(run_config))
    tmux.start_tuitrain("config", str(run_config))
    tmux.wait_for("preset sdxl-lora", "1 Model")
    tmux.keys("M-4")  # Optimizer: name, weight_decay, beta1, beta2, eps
    tmux.wait_for("optimizer.name")
    tmux.keys("Tab", "Tab")
    tmux.wait_for("optimizer.beta1")  # the help panel names the focused field

    tmux.keys("Tab", "1", "Tab", "BSpace", "7")  # one write: beta2 0.999 -> 0.9991, eps 1e-08 -> 1e-07
    tmux.wait_for("optimizer.eps", "1e-07")
    save_and_close(tmux)

    after = config_data(load_config(run_config))
    assert after["optimizer"]["beta1"] == 0.9  # the field being left is untouched
    assert after["optimizer"]["beta2"] == 0.9991
    assert after["optimizer"]["eps"] == 1e-07
    before["optimizer"].update(beta2=0.9991, eps=1e-07)
    assert after == before


def test_alt_digit_in_a_text_field_switches_tabs_in_a_burst(tmux: Tmux, run_config: Path) -> None:
    before = config_data(load_config(run_config))
    tmux.start_tuitrain("config", str(run_config))
    tmux.wait_for("preset sdxl-lora", "1 Model")
    tmux.keys("M-4")
    tmux.wait_for("optimizer.name")
    tmux.keys("Tab", "Tab")
    tmux.wait_for("optimizer.beta1")  # a text field has the cursor

    # alt+5 (Method tab, cursor on lora.type), to rank, clear it, type 8: one write
    tmux.keys("M-5", "Tab", "Tab", "C-a", "C-k", "8")
    tmux.wait_for("lora.rank", "● rank")
    save_and_close(tmux)

    after = config_data(load_config(run_config))
    assert after["optimizer"]["beta1"] == 0.9  # no '∞' typed into it
    assert after["lora"]["rank"] == 8
    before["lora"]["rank"] = 8
    assert after == before


async def test_a_burst_in_pilot_types_into_the_field_tab_moves_to(run_config: Path) -> None:
    app = ConfigEditorApp(run_config)
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await pilot.press("alt+4", "tab", "tab")  # one at a time: beta1
        beta1 = screen.row("optimizer.beta1").editor
        beta2 = screen.row("optimizer.beta2").editor
        assert isinstance(beta1, Input) and isinstance(beta2, Input) and beta1.has_focus

        # beta2 += 5; back to beta1, 0.9 -> 0.8; alt+3: training.method, epochs, max_steps,
        # batch_size 1 -> 4; then alt+4 as most terminals send it (ESC 4, read as '¢')
        burst(app, "tab", "5", "shift+tab", "backspace", "8", "alt+3", "tab", "tab", "tab", "backspace", "4",
              "cent_sign")
        tabs = screen.query_one("#tabs", FormTabs)
        await wait_for(pilot, lambda: tabs.active == "tab-optimizer" and app.focused is not None
                       and screen.row("optimizer.name").editor.has_focus)
        assert beta2.value == "0.9995"
        assert beta1.value == "0.8"
        assert screen.document.get("optimizer.beta1") == 0.8 and screen.document.get("optimizer.beta2") == 0.9995
        assert screen.document.get("training.batch_size") == 4
        assert screen.document.get("training.max_steps") is None
