"""What `check` accepts, `train` can take: every number option has a finite range that the
trainer's libraries accept at both ends (issue 14: training.seed = 10**30 passed check, then
overflowed torch.manual_seed in train's setup)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tuitrain.cli.main import main
from tuitrain.config import parse_config
from tuitrain.config.options import iter_options

NUMBER_OPTIONS = [o for o in iter_options() if o.type_name.split()[0] in ("integer", "number")]
SEED_OPTIONS = ("training.seed", "sampling.seed", "sampling.prompts[].seed")


def _upper(path: str) -> float:
    option = next(o for o in NUMBER_OPTIONS if o.path == path)
    return option.constraints["le"]


@pytest.mark.parametrize("option", NUMBER_OPTIONS, ids=lambda o: o.path)
def test_every_number_option_has_a_finite_range(option) -> None:  # type: ignore[no-untyped-def]
    """`version` is the one exception: a newer one is refused by its own check ("upgrade tuitrain")."""
    if option.path == "version":
        return
    bounds = option.constraints
    assert "ge" in bounds or "gt" in bounds, f"{option.path}: no lower bound"
    assert "le" in bounds or "lt" in bounds, f"{option.path}: no upper bound"
    upper = bounds.get("le", bounds.get("lt"))
    assert math.isfinite(upper) and abs(upper) < 2**63, f"{option.path}: {upper} is past what TOML and torch hold"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[training]\nseed = 1000000000000000000000000000000", "training.seed"),
        ("[sampling]\nseed = 18446744073709551616", "sampling.seed"),
        ("[[sampling.prompts]]\nprompt = 'a'\nseed = 18446744073709551616", "sampling.prompts[0].seed"),
        ("[training]\nmax_steps = " + "9" * 400, "training.max_steps"),
        ("[training]\nlr_warmup_steps = " + "9" * 400, "training.lr_warmup_steps"),
        ("[training]\nmax_grad_norm = inf", "training.max_grad_norm"),
        ("[saving]\nbackup_every_minutes = inf", "saving.backup_every_minutes"),
        ("[saving]\nbackup_every_steps = 1" + "0" * 30, "saving.backup_every_steps"),
        ("[sampling]\nevery_steps = 1" + "0" * 30, "sampling.every_steps"),
        ("[saving]\nkeep_last = 1" + "0" * 30, "saving.keep_last"),
    ],
)
def test_check_refuses_what_train_cannot_take(text: str, key: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.toml"
    config.write_text(text + "\n", encoding="utf-8")
    assert main(["check", str(config)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{config}: {key}: must be <= "), lines


def test_the_largest_seeds_check_accepts_are_ones_torch_takes() -> None:
    """torch generators take seeds below 2**64; the loop derives per-batch noise seeds from training.seed."""
    import torch

    with pytest.raises((RuntimeError, ValueError, OverflowError)):  # the cliff the bounds keep check off
        torch.manual_seed(2**64)
    for path in SEED_OPTIONS:
        seed = int(_upper(path))
        torch.manual_seed(seed)
        torch.Generator().manual_seed(seed)
    config = parse_config({"training": {"seed": int(_upper("training.seed"))},
                           "sampling": {"seed": int(_upper("sampling.seed")),
                                        "prompts": [{"prompt": "a", "seed": int(_upper("sampling.prompts[].seed"))}]}})
    seed = config.training.seed
    epoch, batch = int(_upper("training.epochs")), 10**9
    torch.Generator().manual_seed((seed * 1_000_003 + epoch * 100_003 + batch) % 2**63)  # trainer/loop.py
