"""Samples, saves and backups of a step happen once, under the epoch the user sees.

A step due by steps and by epochs samples and saves once; a run resumed from the backup made
at an epoch's end does not draw that epoch's samples or write its save again; a stop right
after a scheduled save does not write the step's file twice; a sample drawn in the middle of
the first epoch is labelled epoch 1 (the header's count), not 0.
"""

from __future__ import annotations

import os
import re
import signal
from collections import Counter
from pathlib import Path
from typing import Any

from tests.trainer.harness import LORA_SETS, events, new_run, train
from tests.trainer.resume import crash_mid_run
from tuitrain.config import load_config
from tuitrain.trainer.loop import run_training

# 8 images, batch 2: 4 steps an epoch, 8 in all.
SETS = (*LORA_SETS, "training.epochs=2", "sampling.steps=2", "sampling.every_steps=2", "sampling.every_epochs=1",
        "saving.every_steps=2", "saving.every_epochs=1", "saving.backup_every_steps=4")


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_run_killed_after_its_epoch_end_backup_resumes_without_making_that_step_again(tiny_model, tmp_path):
    from tests.trainer.conftest import make_dataset

    run = new_run("once", tiny_model("sd15"), make_dataset(tmp_path / "data"), *SETS)
    prompts = len(load_config(run.config).sampling.prompts) or 1
    assert crash_mid_run(run, (4, 4), event="backup") == 4  # dies just after step 4's backup (the epoch's end)
    assert train(run) == 0

    sampled = Counter(e["step"] for e in events(run, "sample"))
    assert sampled == {2: prompts, 4: prompts, 6: prompts, 8: prompts}, sampled  # step 4: once, not again on resume
    saved = Counter(e["step"] for e in events(run, "saved") if not e["final"])
    assert saved == {2: 1, 4: 1, 6: 1}, saved
    names = _files(run.output)
    assert not [n for n in names if re.search(r"step\d{6}-\d", n)], names  # no "earlier attempt" copies
    assert not [e for e in events(run) if e["type"] in ("log", "warning") and "earlier attempt" in e["message"]]

    # Labels: the epoch the step belongs to, counted from 1 like the step events (mid-epoch 1 is e0001).
    pngs = [n for n in _files(run.samples) if n.endswith(".png")]
    assert {n[:16] for n in pngs} == {"step000002-e0001", "step000004-e0001", "step000006-e0002",
                                      "step000008-e0002"}, pngs
    labelled = {(e["step"], e["epoch"]) for e in events(run, "sample")}
    assert labelled == {(2, 1), (4, 1), (6, 2), (8, 2)}
    assert {e["epoch"] for e in events(run, "step") if e["step"] == 2} == {1}


def test_a_stop_right_after_a_scheduled_save_does_not_save_that_step_twice(tiny_model, tmp_path):
    from tests.trainer.conftest import make_dataset

    run = new_run("stop", tiny_model("sd15"), make_dataset(tmp_path / "data"), *LORA_SETS,
                  "training.epochs=2", "saving.every_steps=2")

    def display(event: dict[str, Any]) -> None:
        if event["type"] == "saved" and event["step"] == 2:
            os.kill(os.getpid(), signal.SIGINT)  # the user presses ctrl+c as the save lands

    assert run_training(run, load_config(run.config), run.root, display) == 0
    finished = events(run, "finished")[-1]
    assert (finished["status"], finished["step"]) == ("stopped", 2)
    assert [e["step"] for e in events(run, "saved")] == [2]
    assert [n for n in _files(run.output) if n.endswith(".safetensors")] == ["stop-step000002.safetensors"]

    assert train(run) == 0  # resumes from the stop's backup: step 2's save is not made again either
    assert Counter(e["step"] for e in events(run, "saved") if not e["final"]) == {2: 1, 4: 1, 6: 1}
