"""EMA of the trained weights: the average diffusers' EMAModel defines, saved, sampled with, resumed."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image, ImageChops
from safetensors.torch import load_file

from tests.trainer.conftest import Reference, make_dataset
from tests.trainer.harness import LORA_SETS, new_run, train, train_cli
from tests.trainer.harness import events as _kind_events
from tests.trainer.harness import train_config as _train_in_process
from tests.trainer.resume import crash_mid_run, resume_matches
from tuitrain.config.schema import EmaSection
from tuitrain.trainer.ema import Ema


def _expected_decay(step: int, decay: float) -> float:
    """diffusers EMAModel's schedule without warm-up: (1 + t) / (10 + t), capped at `decay`."""
    t = step - 1
    return 0.0 if t <= 0 else min(decay, (1 + t) / (10 + t))


@pytest.mark.parametrize("mode", ["gpu", "cpu"])
def test_the_average_follows_the_decay_schedule_every_nth_step(mode: str) -> None:
    param = torch.nn.Parameter(torch.zeros(3))
    ema = Ema([param], EmaSection(mode=mode, decay=0.9, update_every=2), torch.device("cpu"))
    expected = torch.zeros(3)
    updates = 0
    for step in range(1, 21):
        with torch.no_grad():
            param.add_(1.0)
        ema.update(step)
        if step % 2 == 0:
            updates += 1
            d = _expected_decay(updates, 0.9)
            expected = d * expected + (1 - d) * param.detach()
    assert torch.allclose(ema.model.shadow_params[0], expected, atol=1e-6)
    live = param.detach().clone()
    with ema.applied():
        assert torch.allclose(param.detach(), expected, atol=1e-6)
    assert torch.equal(param.detach(), live)  # swapped back exactly


def test_the_saved_file_holds_the_average_not_the_live_weights(reference_lora: Reference, tmp_path: Path) -> None:
    """update_every beyond the run: the average stays at the initial LoRA, whose up-weights are zero."""
    model, data = reference_lora.model, reference_lora.data  # the shared data is only read
    run, code = _train_in_process(tmp_path, model, data, name="frozen-ema", ema={"mode": "cpu", "update_every": 10000})
    assert code == 0, _kind_events(run)[-1]
    frozen = load_file(run.output / "frozen-ema.safetensors")
    ups = [v for k, v in frozen.items() if k.endswith("lora_up.weight")]
    assert ups and all(torch.count_nonzero(v) == 0 for v in ups)

    # decay 0: the average is the live weights, so the file equals the same run's without EMA (the reference run).
    zero, code = _train_in_process(tmp_path, model, data, name="zero-decay", **reference_lora.sections,
                                   ema={"mode": "gpu", "decay": 0.0})
    assert code == 0
    a, b = load_file(reference_lora.run.output / "r.safetensors"), load_file(zero.output / "zero-decay.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert any(torch.count_nonzero(v) for k, v in a.items() if k.endswith("lora_up.weight"))


def test_samples_use_the_average_when_asked(tiny_model, tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data", count=4)
    sampling = {"every_epochs": 2, "before_training": True, "steps": 2, "prompts": [{"prompt": "a red square"}]}

    def first_and_last(name: str, sample_with_ema: bool) -> tuple[Image.Image, Image.Image]:
        run, code = _train_in_process(tmp_path, tiny_model("sd15"), data, name=name, sampling=sampling,
                                      training={"epochs": 2, "learning_rate": 5e-2},
                                      ema={"mode": "gpu", "update_every": 10000, "sample_with_ema": sample_with_ema})
        assert code == 0, _kind_events(run)[-1]
        paths = [Path(e["path"]) for e in _kind_events(run, "sample")]
        assert len(paths) == 2
        return Image.open(paths[0]).convert("RGB"), Image.open(paths[-1]).convert("RGB")

    before, after = first_and_last("with-ema", True)
    assert ImageChops.difference(before, after).getbbox() is None  # the (never updated) average = the start
    before, after = first_and_last("live", False)
    assert ImageChops.difference(before, after).getbbox() is not None


def test_a_trainer_killed_mid_run_resumes_to_the_same_average(tiny_model, tmp_path: Path) -> None:
    """The EMA's state goes into the backups: killed (in-process, resume.crash_mid_run) and resumed, the
    saved average equals an uninterrupted run's. The SIGKILLed process itself: test_train_e2e."""
    model, data = tiny_model("sd15"), make_dataset(tmp_path / "data")
    common = (*LORA_SETS, "training.epochs=6", "saving.backup_every_steps=3", "saving.backup_keep_last=2",
              "ema.mode=cpu", "ema.decay=0.8", "ema.update_every=2")
    straight = new_run("straight", model, data, *common)
    assert train(straight) == 0  # the uninterrupted reference

    broken = new_run("broken", model, data, *common)
    last_step = crash_mid_run(broken, (4, 19))
    resume_matches(broken, straight.output / "straight.safetensors", last_step, backup_every=3, in_process=True)


def test_turning_ema_on_for_a_backup_without_it_is_refused_by_name(tiny_model, tmp_path: Path) -> None:
    model, data = tiny_model("sd15"), make_dataset(tmp_path / "data", count=4)
    run = new_run("switch", model, data, *LORA_SETS, "training.max_steps=2", "saving.backup_every_steps=1")
    assert train(run) == 0
    assert any(run.checkpoints.glob("step-*"))
    out = train_cli(run, "--set", "ema.mode=gpu", "--set", "training.max_steps=4")  # what `tuitrain train` says
    assert out.returncode != 0
    assert "ema.mode" in out.stdout + out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("method", ["finetune", "embedding"])
def test_other_methods_save_their_average_too(method: str, tiny_model, tmp_path: Path) -> None:
    """A never-updated average is the starting point: the fine-tune's base UNet, the embedding's initial rows."""
    from diffusers import UNet2DConditionModel

    data = make_dataset(tmp_path / "data", count=4)
    for caption in data.glob("*.txt"):
        caption.write_text("a photo of <shape>, red")
    model = tiny_model("sd15")
    run, code = _train_in_process(
        tmp_path, model, data, name=method, training={"method": method, "learning_rate": 1e-2},
        embedding={"token": "<shape>", "vectors": 3}, finetune={"diffusers_folder": True},
        saving={"dtype": "fp32"}, ema={"mode": "gpu", "update_every": 10000},
    )
    assert code == 0, _kind_events(run)[-1]
    if method == "embedding":
        rows = load_file(run.output / f"{method}.safetensors")["emb_params"]
        assert rows.shape[0] == 3 and all(torch.equal(rows[0], row) for row in rows)  # all start as '*'
        return
    saved = UNet2DConditionModel.from_pretrained(run.output / f"{method}-diffusers" / "unet").state_dict()
    base = UNet2DConditionModel.from_pretrained(model / "unet").state_dict()
    assert saved.keys() == base.keys() and all(torch.equal(saved[k], base[k]) for k in base)
