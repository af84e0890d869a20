"""SD3 / SD3.5 on tiny models: the preset trains and learns; the LoRA file (text encoders included) reproduces
the trainer's outputs in diffusers; the prompt encoding is StableDiffusion3Pipeline's own.

The family's contract (folder loading, every method, stop/resume, diffusers' loaders) is
tests/trainer/test_conformance.py's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors import safe_open

from tests.trainer.conftest import make_dataset
from tests.trainer.harness import events, new_run, train
from tests.trainer.test_flux import CAPTION, adapter_from_backup, denoiser_output, eval_loss_for
from tuitrain.config import load_config
from tuitrain.trainer.families import get_adapter

SETS = ("data.resolution=64", "training.epochs=15", "training.learning_rate=5e-3", "training.lr_warmup_steps=0",
        "lora.rank=8", "lora.alpha=8", "lora.train_ff=true", "sampling.every_epochs=0", "saving.every_epochs=0",
        "training.gradient_checkpointing=false")


@pytest.fixture(scope="module")
def sd3_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tuitrain.trainer.tiny import save_tiny_model

    return save_tiny_model("sd3", tmp_path_factory.mktemp("sd3") / "model", flavour="3.5-medium")


def test_prompt_encoding_is_the_pipelines(sd3_model: Path) -> None:
    from diffusers import StableDiffusion3Pipeline

    pipe = StableDiffusion3Pipeline.from_pretrained(str(sd3_model), local_files_only=True)
    adapter = get_adapter("sd3")
    parts = adapter.parts(pipe, "auto")
    assert parts.flavour == "3.5-medium"  # detected: fewer than 38 blocks, with SD3.5 medium's extra attention
    mine = adapter.encode_text(parts, [CAPTION, "x"])
    with torch.no_grad():
        hidden, _, pooled, _ = pipe.encode_prompt(prompt=[CAPTION, "x"], prompt_2=None, prompt_3=None,
                                                  do_classifier_free_guidance=False, max_sequence_length=256)
    torch.testing.assert_close(mine["hidden"], hidden)
    torch.testing.assert_close(mine["pooled"], pooled)


def test_the_preset_trains_learns_and_the_lora_reproduces_the_trainer(sd3_model: Path, tmp_path: Path) -> None:
    from diffusers import StableDiffusion3Pipeline

    data = make_dataset(tmp_path / "data", count=2)
    run = new_run("s", sd3_model, data, *SETS, "lora.train_text_encoder=true", "model.flavour=3.5-medium",
                  preset="sd35-large-lora", where=tmp_path)
    config = load_config(run.config)
    assert train(run) == 0, events(run)[-1]
    path = run.output / "s.safetensors"
    with safe_open(path, "pt") as f:
        keys, meta = list(f.keys()), f.metadata()
    prefixes = {k.split(".")[0] for k in keys}
    assert prefixes == {"transformer", "text_encoder", "text_encoder_2"}  # T5 is never adapted
    assert not any(k.endswith(".alpha") for k in keys)  # diffusers refuses SD3 files with .alpha keys
    assert meta["modelspec.architecture"] == "stable-diffusion-v3-5-medium/lora"
    assert meta["ss_base_model_version"] == "sd3"

    def load() -> Any:
        return StableDiffusion3Pipeline.from_pretrained(str(sd3_model), local_files_only=True)

    before = eval_loss_for("sd3", load(), config, data)
    loaded = load()
    loaded.load_lora_weights(str(path))
    assert eval_loss_for("sd3", loaded, config, data) < 0.9 * before

    adapter = get_adapter("sd3")
    adapter.configure(config)
    mine = load()
    adapter_from_backup(run, config, adapter, mine.transformer, [mine.text_encoder, mine.text_encoder_2])
    base, trained = denoiser_output(adapter, load()), denoiser_output(adapter, mine)
    # Folding alpha/rank into lora_B and diffusers' own adapter order round differently in fp32 (~3e-5
    # here, through three encoders and the transformer); the adapter's effect is far above that.
    assert (trained - base).abs().max() > 100 * 1e-4, (trained - base).abs().max()
    torch.testing.assert_close(denoiser_output(adapter, loaded), trained, rtol=1e-3, atol=1e-4)
