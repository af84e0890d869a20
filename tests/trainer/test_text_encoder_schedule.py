"""training.text_encoder_max_steps / _epochs: the text encoders train for their share of the run, then stay
exactly as they were while the denoiser trains on; resumable; refused by name where nothing could stop."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.trainer.conftest import make_dataset
from tests.trainer.harness import LORA_SETS, events, new_run, train, train_config, trainer_for
from tests.trainer.resume import crash_mid_run, resume_matches
from tuitrain.config import parse_config
from tuitrain.config.errors import ConfigError

LORA = {"rank": 4, "alpha": 4, "train_text_encoder": True}


def _split(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """A kohya LoRA file's (text-encoder, UNet) tensors."""
    tensors = load_file(path)
    return ({k: v for k, v in tensors.items() if k.startswith("lora_te")},
            {k: v for k, v in tensors.items() if k.startswith("lora_unet")})


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("stop", [{"text_encoder_max_steps": 2}, {"text_encoder_max_epochs": 1}])
def test_lora_text_encoders_stop_after_their_share_and_the_unet_trains_on(tiny_model, tmp_path: Path,
                                                                          stop: dict) -> None:
    """4 images, batch 2: 2 steps an epoch. Text encoders stopped after step 2 of 6 hold exactly the weights
    of a 2-step run; the UNet's keep moving; without the stop the text encoders move too."""
    model, data = tiny_model("sd15"), make_dataset(tmp_path / "data", count=4)
    runs = {}
    for name, training in (("two", {"max_steps": 2}), ("stopped", {"max_steps": 6, **stop}),
                           ("all", {"max_steps": 6})):
        run, code = train_config(tmp_path, model, data, name=name, lora=LORA, training=training)
        assert code == 0, events(run)[-1]
        runs[name] = _split(run.output / f"{name}.safetensors")
        if name == "stopped":
            logs = [e["message"] for e in events(run, "log")]
            assert any("text encoders frozen after step 2" in m for m in logs), logs
    (te_two, unet_two), (te_stopped, unet_stopped), (te_all, unet_all) = runs["two"], runs["stopped"], runs["all"]
    assert te_two and _same(te_stopped, te_two)
    assert not _same(unet_stopped, unet_two)
    assert not _same(te_all, te_two)
    assert any(float(v.abs().max()) > 0 for k, v in te_two.items() if "lora_up" in k)  # they did train first


def test_finetune_text_encoder_stops_too(tiny_model, tmp_path: Path) -> None:
    model, data = tiny_model("sd15"), make_dataset(tmp_path / "data", count=4)
    weights = {}
    for name, training in (("one", {"max_steps": 1}), ("stopped", {"max_steps": 3, "text_encoder_max_steps": 1})):
        with trainer_for(tmp_path, model, data, name=name, training={**training, "method": "finetune"},
                         finetune={"train_text_encoder": True}) as trainer:
            trainer.train()
            assert not trainer.method.trains_text_encoders if name == "stopped" else trainer.method.trains_text_encoders
            weights[name] = {k: v.clone() for k, v in trainer.method.state_dict().items()}
    te = [k for k in weights["one"] if k.startswith("text_encoder.")]
    unet = [k for k in weights["one"] if k.startswith("unet.")]
    assert te and unet
    assert all(torch.equal(weights["one"][k], weights["stopped"][k]) for k in te)
    assert any(not torch.equal(weights["one"][k], weights["stopped"][k]) for k in unet)


def test_a_run_crashed_after_the_stop_resumes_bit_identical(tiny_model, tmp_path: Path) -> None:
    model, data = tiny_model("sd15"), make_dataset(tmp_path / "data")  # 8 images: 4 steps an epoch
    common = (*LORA_SETS, "training.epochs=3", "lora.train_text_encoder=true", "training.text_encoder_max_epochs=1",
              "saving.backup_every_steps=3")
    straight = new_run("straight", model, data, *common)
    assert train(straight) == 0, events(straight)[-1]
    broken = new_run("broken", model, data, *common)
    last_step = crash_mid_run(broken, (7, 10))  # past the stop at step 4; the backup at 6 is past it too
    resume_matches(broken, straight.output / "straight.safetensors", last_step, backup_every=3, in_process=True)
    logs = [e["message"] for e in events(broken, "log")]
    assert sum("text encoders frozen" in m for m in logs) == 2  # once in the first attempt, once at the resume


@pytest.mark.parametrize(
    ("table", "line"),
    [
        ({"training": {"text_encoder_max_steps": 5}},
         "training.text_encoder_max_steps: stops text-encoder training, but this run trains none (needs "
         "lora.train_text_encoder = true); remove it, got 5"),
        ({"training": {"method": "embedding", "text_encoder_max_epochs": 2}},
         "training.text_encoder_max_epochs: stops text-encoder training, but this run trains none (needs a lora "
         "or finetune run); remove it, got 2"),
        ({"training": {"text_encoder_max_steps": 5, "text_encoder_max_epochs": 2}, "lora": {"train_text_encoder": True}},
         "training.text_encoder_max_epochs: set it or text_encoder_max_steps, not both (got 2 epochs and 5 steps)"),
        ({"training": {"text_encoder_max_steps": 0}}, "training.text_encoder_max_steps: must be >= 1, got 0"),
    ],
)
def test_a_stop_that_cannot_apply_is_one_line_naming_the_key(table: dict, line: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(table)
    assert str(err.value) == line
