"""The LR curve in the config editor's side panel follows the schedule and the run's counted steps;
an optimizer's own settings show only while it is the chosen one."""

from __future__ import annotations

from pathlib import Path


from tests.config_editor.conftest import SIZE, editor, settled, type_into, wait_for
from tuitrain.schedules import Schedule
from tuitrain.tui.config_editor.app import ConfigEditorApp
from tuitrain.tui.config_editor.lr_preview import WIDTH, curve_rows, lr_preview


def derived(screen) -> str:  # type: ignore[no-untyped-def]
    return str(screen.query_one("#derived").render())


def test_curve_rows_draw_eighths_top_line_first() -> None:
    # 3 rows are 24 eighths: 1.0 fills the column, 0.5 is a row and a half, 1/24 one eighth.
    assert curve_rows([1.0, 0.5, 0.0, 1 / 24], rows=3) == ["█   ", "█▄  ", "██ ▁"]


def test_the_preview_reads_the_shared_formulas() -> None:
    values = {"training.lr_scheduler": "rex", "training.learning_rate": 2e-4, "training.lr_warmup_steps": 0,
              "training.lr_warmup_fraction": 0.1, "training.lr_cycles": 1, "training.lr_power": 1.0,
              "training.lr_min_ratio": 0.0, "training.max_steps": None}
    text = lr_preview(values.get, 500)
    title, *rows, ends = text.splitlines()
    assert title == "rex over 500 steps, warm-up 50"
    assert len(rows) == 3 and all(len(r) == WIDTH for r in rows)
    assert rows == curve_rows(Schedule("rex", 500, 50).curve(WIDTH))
    last = 2e-4 * Schedule("rex", 500, 50).factor(499)  # the last step's, just above 0
    assert ends == f"0 → peak 0.000199 → {last:.3g}" and last > 0
    values["training.lr_scheduler"] = "nonsense"
    assert lr_preview(values.get, 500) == "LR curve: fix the schedule settings to draw it"


async def test_the_panel_draws_the_runs_curve_and_follows_edits(run_config: Path) -> None:
    app = ConfigEditorApp(run_config)  # sdxl-lora: cosine, 50 warm-up steps; 50 steps an epoch, 10 epochs
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await wait_for(pilot, lambda: "total steps" in derived(screen))
        await wait_for(pilot, lambda: "cosine over 500 steps, warm-up 50" in derived(screen))
        before = derived(screen)
        (await screen.row("training.lr_scheduler").open_editor()).value = "cosine_with_min_lr"
        await settled(pilot, screen)
        await type_into(pilot, screen.row("training.lr_min_ratio"), "0.5")
        await wait_for(pilot, lambda: "cosine_with_min_lr over 500 steps" in derived(screen))
        after = derived(screen)
        assert "→ 5e-05" in after and after != before  # ends at half of 1e-4


async def test_optimizer_rows_follow_the_chosen_optimizer(run_config: Path) -> None:
    app = ConfigEditorApp(run_config)  # adamw
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = editor(app)
        shown = lambda path: screen.row(path).display  # noqa: E731
        assert shown("optimizer.kernel") and shown("optimizer.beta1") and shown("optimizer.weight_decay")
        assert not shown("optimizer.d_coef") and not shown("optimizer.momentum") and not shown("optimizer.paged")
        (await screen.row("optimizer.name").open_editor()).value = "prodigy"
        await wait_for(pilot, lambda: shown("optimizer.d_coef"))
        assert not shown("optimizer.kernel") and shown("optimizer.weight_decay")
        (await screen.row("optimizer.name").open_editor()).value = "sgd"
        await wait_for(pilot, lambda: shown("optimizer.momentum") and shown("optimizer.nesterov"))
        assert not shown("optimizer.beta1") and not shown("optimizer.d_coef")
