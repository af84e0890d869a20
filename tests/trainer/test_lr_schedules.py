"""LR schedules: the libraries' schedulers the trainer steps with give, at every step, the factors of the
torch-free formulas the config editor draws (tuitrain.schedules); warm-up as a fraction; the loop's lr events."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.trainer.conftest import make_dataset
from tests.trainer.harness import events, train_config
from tuitrain.config import parse_config
from tuitrain.config.errors import ConfigError
from tuitrain.config.schema import TrainingSection
from tuitrain.schedules import SCHEDULES, Schedule, warmup_steps
from tuitrain.trainer.optim import build_scheduler, schedule_of

CASES = [
    {"lr_warmup_steps": 0},
    {"lr_warmup_steps": 7},
    {"lr_warmup_fraction": 0.25},
    {"lr_warmup_steps": 5, "lr_cycles": 3, "lr_power": 2.0, "lr_min_ratio": 0.1},
    {"lr_warmup_fraction": 0.1, "lr_power": 0.5, "lr_min_ratio": 0.3},
]


def test_the_schema_offers_the_formulas_schedules() -> None:
    from tuitrain.config.fields import literal_choices

    assert literal_choices(TrainingSection.model_fields["lr_scheduler"].annotation) == SCHEDULES


@pytest.mark.parametrize("settings", CASES)
@pytest.mark.parametrize("name", SCHEDULES)
def test_the_trainers_scheduler_follows_the_formula_at_every_step(name: str, settings: dict) -> None:
    total, lr = 40, 2e-3
    training = TrainingSection(lr_scheduler=name, **settings)
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([{"params": [param]}], lr=lr)
    scheduler = build_scheduler(optimizer, training, total)
    formula = schedule_of(training, total)
    for step in range(total + 2):  # past the end too: --more-epochs continues a finished run's schedule
        assert scheduler.get_last_lr()[0] == pytest.approx(lr * formula.factor(step), rel=1e-9, abs=1e-15), step
        optimizer.step()
        scheduler.step()


def test_the_new_schedules_have_their_shapes() -> None:
    total = 100
    rex = Schedule("rex", total)
    linear = Schedule("linear", total)
    assert rex.factor(0) == 1.0 and rex.factor(total) == 0.0
    assert all(rex.factor(s) > linear.factor(s) for s in range(1, total))  # stays higher than linear
    assert rex.factor(50) == pytest.approx(2 / 3)  # (1 - z) / (1/2 + (1 - z) / 2) at z = 1/2
    floor = Schedule("cosine_with_min_lr", total, min_ratio=0.1)
    assert floor.factor(total) == pytest.approx(0.1) and floor.factor(0) == 1.0
    assert Schedule("rex", total, min_ratio=0.2).factor(total) == pytest.approx(0.2)
    square = Schedule("polynomial", total, power=2.0)
    assert square.factor(50) == pytest.approx(0.25) and square.factor(total) == 0.0
    assert Schedule("polynomial", total, warmup_steps=10).factor(5) == 0.5


def test_warmup_as_a_fraction_counts_steps_of_this_run() -> None:
    assert warmup_steps(200, 0, 0.05) == 10 and warmup_steps(200, 30, 0.0) == 30
    s = schedule_of(TrainingSection(lr_scheduler="constant_with_warmup", lr_warmup_fraction=0.1), 50)
    assert s.warmup_steps == 5 and s.factor(4) < 1.0 == s.factor(5)


@pytest.mark.parametrize(
    ("training", "line"),
    [
        ({"lr_warmup_steps": 10, "lr_warmup_fraction": 0.1}, "training.lr_warmup_fraction: set it or lr_warmup_steps"),
        ({"lr_warmup_fraction": 1.0}, "training.lr_warmup_fraction: must be < 1, got 1"),
        ({"lr_min_ratio": -0.1}, "training.lr_min_ratio: must be >= 0, got -0.1"),
        ({"lr_power": 0}, "training.lr_power: must be > 0, got 0"),
        ({"lr_scheduler": "step"}, "training.lr_scheduler: must be one of 'constant'"),
    ],
)
def test_bad_schedule_settings_are_one_line_naming_the_key(training: dict, line: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"training": training})
    assert str(err.value).startswith(line) and "\n" not in str(err.value)


def test_the_loop_steps_with_the_schedule(tiny_model, tmp_path: Path) -> None:
    """A real run's step events carry the learning rate the formula gives (REX, warm-up a fraction of the run)."""
    data = make_dataset(tmp_path / "data", count=4)
    run, code = train_config(tmp_path, tiny_model("sd15"), data,
                             training={"epochs": 5, "learning_rate": 1e-3, "lr_scheduler": "rex",
                                       "lr_warmup_fraction": 0.2, "lr_min_ratio": 0.1})
    assert code == 0, events(run)[-1]
    lrs = [e["lr"] for e in events(run, "step")]
    formula = Schedule("rex", 10, warmup_steps=2, min_ratio=0.1)
    # The event follows the optimizer step: its lr is the next step's, factor(step).
    assert lrs == pytest.approx([1e-3 * formula.factor(step) for step in range(1, 11)], rel=1e-9)
    assert lrs[0] == pytest.approx(5e-4) and lrs[-1] == pytest.approx(1e-4)
