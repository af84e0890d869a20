"""The eval loss (issue 21): held-out images never train, and their score at fixed noise moves only with the weights.

A tiny sd15 LoRA run with a role = "validation" concept and data.validation_split: the held-out set is
what dataset.holdout names, two evaluations of the same weights agree to the last digit, saves get
different numbers, and a run crashed and resumed scores its later saves exactly as the unbroken run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.trainer.conftest import make_dataset
from tests.trainer.harness import config_table, events, train, train_config, trainer_for
from tests.trainer.resume import crash_mid_run
from tuitrain.config import parse_config
from tuitrain.config.io import dump_config
from tuitrain.dataset.holdout import split_count, split_images
from tuitrain.runs import RunDir


def _data(tmp_path: Path) -> tuple[Path, Path]:
    train_dir = make_dataset(tmp_path / "train", count=8)
    valid_dir = make_dataset(tmp_path / "valid", count=2, colour=(40, 200, 60))
    return train_dir, valid_dir


def _sections(train_dir: Path, valid_dir: Path) -> dict:
    return {
        "data": {"resolution": 64, "validation_split": 0.25,
                 "concepts": [{"path": str(train_dir)}, {"path": str(valid_dir), "role": "validation"}]},
        "training": {"epochs": 2, "batch_size": 2, "learning_rate": 1e-3, "seed": 3},
        "saving": {"every_epochs": 0, "every_steps": 2, "backup_every_steps": 2},
        "evaluation": {"draws": 2, "train_images": 2},
    }


def test_split_rule_is_stable_and_keeps_a_training_image(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    paths = [folder / f"img{i}.png" for i in range(10)]
    chosen = split_images(paths, folder, 0.2)
    assert len(chosen) == 2
    assert split_images(list(reversed(paths)), folder, 0.2) == chosen  # not the listing order
    moved = tmp_path / "elsewhere" / "c"  # the folder's place on disk does not matter, its file names do
    assert {p.name for p in split_images([moved / p.name for p in paths], moved, 0.2)} == {p.name for p in chosen}
    # Adding images never moves a held-out one back into training when the count stays.
    assert chosen <= split_images(paths + [folder / "new.png"], folder, 0.2)
    assert split_count(1, 0.5) == 0 and split_count(2, 0.5) == 1 and split_count(3, 0.01) == 1


def test_held_out_images_never_train_and_score_the_same_twice(tmp_path: Path, tiny_model) -> None:
    train_dir, valid_dir = _data(tmp_path)
    sections = _sections(train_dir, valid_dir)
    with trainer_for(tmp_path, tiny_model("sd15"), train_dir, **sections) as trainer:
        held = {s.path for s in trainer.data.held_out}
        trained = {s.path for s in trainer.data.samples}
        assert {p for p in held if p.parent == valid_dir} == set(valid_dir.glob("*.png"))
        assert held & trained == set()
        assert len(held) == 2 + 2 and len(trained) == 6
        assert held - set(valid_dir.glob("*.png")) == split_images(sorted(train_dir.glob("*.png")), train_dir, 0.25)
        first = trainer.evaluator.evaluate(0)
        second = trainer.evaluator.evaluate(0)
        assert first.loss is not None and first.train_loss is not None
        assert (first.loss, first.train_loss) == (second.loss, second.train_loss)  # bit for bit, not approx
        # The step loss' own random draws are not disturbed by an evaluation: the batch loss is the same after it.
        assert trainer.batch_loss([0, 1], 0, 0).item() == trainer.batch_loss([0, 1], 0, 0).item()


def test_eval_loss_at_each_save_and_exact_after_a_resume(tmp_path: Path, tiny_model) -> None:
    train_dir, valid_dir = _data(tmp_path)
    sections = _sections(train_dir, valid_dir)
    run, code = train_config(tmp_path, tiny_model("sd15"), train_dir, name="whole", **sections)
    assert code == 0
    scored = events(run, "eval")
    assert [e["step"] for e in scored] == [2, 4, 6]
    assert all(e["images"] == 4 and e["train_images"] == 2 and e["draws"] == 2 for e in scored)
    losses = [e["loss"] for e in scored]
    assert len(set(losses)) == 3  # the weights moved, so did the number
    assert len({e["train_loss"] for e in scored}) == 3
    saved = {e["step"]: e["eval_loss"] for e in events(run, "saved")}
    assert saved == {e["step"]: e["loss"] for e in scored}

    broken = RunDir(tmp_path / "broken")
    broken.create_folders()
    broken.config.write_text(dump_config(parse_config(config_table(tiny_model("sd15"), train_dir, None, **sections))))
    crash_mid_run(broken, (3, 3))  # dies at step 3: the step-2 backup is where it resumes
    assert train(broken) == 0
    again = {e["step"]: (e["loss"], e["train_loss"]) for e in events(broken, "eval")}
    assert again[4] == (scored[1]["loss"], scored[1]["train_loss"])
    assert again[6] == (scored[2]["loss"], scored[2]["train_loss"])


def test_no_held_out_set_scores_nothing(tmp_path: Path, tiny_model) -> None:
    data = make_dataset(tmp_path / "d", count=4)
    run, code = train_config(tmp_path, tiny_model("sd15"), data, saving={"every_epochs": 0, "every_steps": 2})
    assert code == 0
    assert events(run, "eval") == []
    assert all("eval_loss" not in e for e in events(run, "saved"))


@pytest.mark.parametrize("split", [0.5])
def test_check_lists_the_held_out_images(tmp_path: Path, split: float) -> None:
    """The pre-flight names the images the split holds out, by the trainer's own rule."""
    import subprocess
    import sys

    train_dir = make_dataset(tmp_path / "train", count=4)
    valid_dir = make_dataset(tmp_path / "valid", count=1)
    config = parse_config({"model": {"family": "sd15", "base": str(tmp_path / "nomodel")},
                           "data": {"resolution": 64, "validation_split": split,
                                    "concepts": [{"path": str(train_dir)},
                                                 {"path": str(valid_dir), "role": "validation"}]}})
    (tmp_path / "c.toml").write_text(dump_config(config))
    out = subprocess.run([sys.executable, "-m", "tuitrain", "check", str(tmp_path / "c.toml")],
                         capture_output=True, text=True, timeout=300)
    held = split_images(sorted(train_dir.glob("*.png")), train_dir, split)
    assert "held out" in out.stdout, out.stdout + out.stderr
    for path in held | {valid_dir / "img0.png"}:
        assert path.name in out.stdout
    assert "Steps: 2 per epoch" in out.stdout  # the 2 images left to train, batch 1: held-out ones never count


def test_every_n_steps_scores_once_a_step_beside_the_saves(tmp_path: Path, tiny_model) -> None:
    train_dir, valid_dir = _data(tmp_path)
    sections = _sections(train_dir, valid_dir)
    sections["evaluation"] = {"draws": 1, "train_images": 0, "every_steps": 1}
    sections["training"] = {**sections["training"], "epochs": 1}
    run, code = train_config(tmp_path, tiny_model("sd15"), train_dir, name="often", **sections)
    assert code == 0
    scored = events(run, "eval")
    assert [e["step"] for e in scored] == [1, 2, 3]  # step 2's save and schedule: one evaluation
    assert all(e["train_loss"] is None and e["train_images"] == 0 for e in scored)
    assert {e["step"]: e["eval_loss"] for e in events(run, "saved")} == {2: scored[1]["loss"], 3: scored[2]["loss"]}
