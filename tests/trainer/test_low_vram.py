"""Low-VRAM switches besides quantization: text encoders parked off the GPU once every caption is cached
(model.text_encoders_after_caching), VAE tiling (model.vae_tiling).

On the CPU the move itself changes nothing measurable; what must hold for it to be safe on a GPU is
checked here: every caption is encoded before step 1 and none after it (the encoders are not needed while
parked), the runs that cannot cache captions keep them, and samples still encode their prompts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.trainer.conftest import make_dataset
from tests.trainer.harness import events, new_run, trainer_for
from tuitrain.config import load_config


def _captioned(folder: Path) -> Path:
    """Four images with four different captions."""
    make_dataset(folder, count=4)
    for i in range(4):
        (folder / f"img{i}.txt").write_text(f"a red square, mark {i}")
    return folder


def test_every_caption_is_cached_before_step_one_and_the_encoders_are_parked(tiny_model, tmp_path: Path) -> None:
    data = _captioned(tmp_path / "data")
    with trainer_for(tmp_path, tiny_model("sd15"), data) as trainer:
        assert trainer.text_encoder_parking.parked

        def no_encoding(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("a cached caption was encoded again")

        trainer.adapter.encode_text = no_encoding  # every training caption must come from the cache now
        for i in range(4):
            assert trainer._conditioning([f"a red square, mark {i}"])["hidden"].shape[0] == 1


@pytest.mark.parametrize("why", [{"data": {"shuffle_tags": True}}, {"data": {"caption_dropout": 0.1}},
                                 {"lora": {"train_text_encoder": True}},
                                 {"model": {"text_encoders_after_caching": "keep"}},
                                 {"data": {"cache_text_embeddings": False}}])
def test_runs_that_encode_captions_while_training_keep_their_encoders(why: dict[str, Any], tiny_model,
                                                                      tmp_path: Path) -> None:
    data = _captioned(tmp_path / "data")
    sections = {key: dict(value) for key, value in why.items()}
    if "model" in sections:
        sections["model"] = {"family": "sd15", "base": str(tiny_model("sd15")), **sections["model"]}
    with trainer_for(tmp_path, tiny_model("sd15"), data, **sections) as trainer:
        assert not trainer.text_encoder_parking.parked


def test_a_parked_run_never_encodes_a_caption_while_training_and_still_draws_samples(
        tiny_model, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tuitrain.trainer.families.sd.adapter import StableDiffusionAdapter
    from tuitrain.trainer.loop import run_training

    calls: list[str] = []
    started: list[bool] = []
    original = StableDiffusionAdapter.encode_text

    def counting(self: Any, parts: Any, captions: list[str], clip_skip: int = 0) -> Any:
        if started:
            calls.extend(captions)
        return original(self, parts, captions, clip_skip)

    monkeypatch.setattr(StableDiffusionAdapter, "encode_text", counting)
    data = _captioned(tmp_path / "data")
    run = new_run("p", tiny_model("sd15"), data, "data.resolution=64", "training.epochs=2", "sampling.every_epochs=1",
                  "sampling.steps=2", where=tmp_path)
    code = run_training(run, load_config(run.config), run.root,
                        lambda e: started.append(True) if e["type"] == "started" else None)
    assert code == 0, events(run)[-1]
    assert calls == [] and len(events(run, "sample")) >= 2


def test_vae_tiling_turns_on_tiles_and_slices_and_keys_the_latent_cache(tiny_model, tmp_path: Path) -> None:
    data = _captioned(tmp_path / "data")
    model = tiny_model("sd15")
    with trainer_for(tmp_path, model, data, name="plain") as plain:
        assert not plain.parts.vae.use_tiling
        plain_id = plain.inputs.model_id
    with trainer_for(tmp_path, model, data, name="tiled",
                     model={"family": "sd15", "base": str(model), "vae_tiling": True}) as tiled:
        assert tiled.parts.vae.use_tiling and tiled.parts.vae.use_slicing
        assert tiled.inputs.model_id != plain_id  # tiled latents are not the untiled ones' cache entries


@pytest.mark.parametrize("preset", ["flux-dev-lora-lowvram", "sdxl-lora-lowvram"])
def test_the_low_vram_presets_train(preset: str, tiny_model, tmp_path: Path) -> None:
    """Every switch the presets turn on (nf4 / int8 bases, int8 text encoders parked after caching, paged
    AdamW 8-bit, checkpointing) together, on a tiny model of the family."""
    from tuitrain.trainer.tiny import save_tiny_model

    model = save_tiny_model("flux", tmp_path / "flux") if preset.startswith("flux") else tiny_model("sdxl")
    run = new_run("low", model, _captioned(tmp_path / "data"), "data.resolution=64", "training.epochs=1",
                  "sampling.every_epochs=1", "sampling.steps=2", preset=preset, where=tmp_path)
    config = load_config(run.config)
    assert config.model.quantize != "none" and config.optimizer.paged and config.training.gradient_checkpointing
    from tuitrain.trainer.loop import run_training

    assert run_training(run, config, run.root) == 0, events(run)[-1]
    assert (run.output / "low.safetensors").is_file() and events(run, "sample")


def test_parking_moves_bitsandbytes_int8_state_with_the_weights() -> None:
    """Linear8bitLt keeps its int8 matrix and scales in state.CB / SCB after its first forward, out of Module.to's
    reach: parking re-points CB at the moved weight (no second copy) and moves SCB (a CUDA copy stood in here by a
    clone: the logic, not the device, is what a CPU can check)."""
    import bitsandbytes as bnb
    import torch

    from tuitrain.trainer.text_encoder_parking import move

    layer = bnb.nn.Linear8bitLt(16, 8, bias=False, has_fp16_weights=False)
    model = torch.nn.Sequential(layer)
    model(torch.randn(2, 16))  # quantizes and fills state.CB / SCB
    assert isinstance(layer.state.CB, torch.Tensor)
    layer.state.CB = layer.state.CB.clone()  # as if left behind on another device
    stale_scb = layer.state.SCB
    move(model, torch.device("cpu"))
    assert layer.state.CB.data_ptr() == layer.weight.data.data_ptr()
    assert torch.equal(layer.state.SCB, stale_scb)
    out = model(torch.randn(2, 16))
    assert out.shape == (2, 8) and torch.isfinite(out).all()
