"""The side panel shows the effective batch (batch x accumulation x processes) and follows edits to any of
them; the step count follows the process count; the learning rate is said to be used as given."""

from __future__ import annotations

from pathlib import Path

from tests.config_editor.conftest import SIZE, editor, type_into, wait_for
from tuitrain.tui.config_editor.app import ConfigEditorApp
from tuitrain.tui.config_editor.effective_batch import effective_batch_text, lr_note


def derived(screen) -> str:  # type: ignore[no-untyped-def]
    return " ".join(str(screen.query_one("#derived").render()).split())


def test_the_line_spells_out_the_product() -> None:
    values = {"training.batch_size": 4, "training.gradient_accumulation": 2, "distributed.processes": 2,
              "distributed.gpus": ""}
    assert effective_batch_text(values.get) == "effective batch: 4 x 2 accumulation x 2 processes = 16 images per step"
    assert lr_note(values.get) == "used as given for 16 images per step: never scaled with the batch or the process count"
    values.update({"distributed.processes": 0, "distributed.gpus": "0,2,3"})  # 0: one per listed GPU
    assert effective_batch_text(values.get).endswith("x 3 processes = 24 images per step")
    values["distributed.gpus"] = ""  # 0 and no list: every visible GPU, which only CUDA knows
    assert effective_batch_text(values.get) == "effective batch: 4 x 2 accumulation x every visible GPU (one process per GPU)"
    assert lr_note(values.get).startswith("used as given for the effective batch")
    values.update({"distributed.processes": 1, "training.gradient_accumulation": 1, "training.batch_size": 1})
    assert effective_batch_text(values.get) == "effective batch: 1 image per step"
    values["training.batch_size"] = "x"  # mid-typing
    assert effective_batch_text(values.get) == "effective batch: fix batch_size and gradient_accumulation to count it"


async def test_processes_and_accumulation_change_the_shown_effective_batch(run_config: Path) -> None:
    app = ConfigEditorApp(run_config)  # sdxl-lora: batch 1, no accumulation; 50 steps an epoch
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await wait_for(pilot, lambda: "total steps" in derived(screen))
        assert "effective batch: 1 image per step" in derived(screen)
        assert "steps per epoch: 50" in derived(screen)
        assert "used as given for 1 image per step: never scaled" in derived(screen)

        await type_into(pilot, screen.row("distributed.processes"), "2")
        await wait_for(pilot, lambda: "effective batch: 1 x 2 processes = 2 images per step" in derived(screen))
        await wait_for(pilot, lambda: "steps per epoch: 25" in derived(screen))  # the processes split the batches
        assert "used as given for 2 images per step: never scaled" in derived(screen)

        await type_into(pilot, screen.row("training.gradient_accumulation"), "3")
        await wait_for(pilot, lambda: "1 x 3 accumulation x 2 processes = 6 images per step" in derived(screen))
        await wait_for(pilot, lambda: "steps per epoch: 8" in derived(screen))  # 50 batches / 2 / 3
        assert "used as given for 6 images per step" in derived(screen)
