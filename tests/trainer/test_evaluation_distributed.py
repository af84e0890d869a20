"""The eval loss on two processes (distributed.processes = 2, torchrun and gloo on this CPU): rank 0 scores the
held-out images alone at each save, the other rank goes on, nothing hangs, and the number is what one process
with the same effective batch scores (the weights are the same within DDP's float summation)."""

from __future__ import annotations

from pathlib import Path

from tests.trainer.conftest import make_dataset
from tests.trainer.harness import events, new_run, train, train_cli

SETS = ("data.resolution=64", "training.device=cpu", "lora.rank=4", "lora.alpha=4", "training.learning_rate=1e-3",
        "sampling.every_epochs=0", "saving.every_epochs=0", "saving.every_steps=2", "saving.dtype=fp32",
        "data.workers=0", "data.validation_split=0.25", "evaluation.draws=2", "evaluation.train_images=2")


def test_two_processes_score_the_saves_like_one(tiny_model, tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data", count=10)
    two = new_run("two", tiny_model("sd15"), data, *SETS, "training.batch_size=1", "distributed.processes=2",
                  "training.max_steps=4")
    out = train_cli(two, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    one = new_run("one", tiny_model("sd15"), data, *SETS, "training.batch_size=1",
                  "training.gradient_accumulation=2", "training.max_steps=4")
    assert train(one) == 0
    scored_two = {e["step"]: e["loss"] for e in events(two, "eval")}
    scored_one = {e["step"]: e["loss"] for e in events(one, "eval")}
    assert sorted(scored_two) == sorted(scored_one) == [2, 4]
    for step in (2, 4):
        assert abs(scored_two[step] - scored_one[step]) <= 1e-5 * abs(scored_one[step])
