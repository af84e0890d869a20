"""model.quantize: the frozen denoiser in int8 / nf4 (bitsandbytes, on the CPU here), an fp32 adapter on top.

What must hold: the linear layers really are stored quantized (bytes measured), training and
sampling run, and the saved LoRA, applied by diffusers to the unquantized base, moves the model
the way it moved the quantized one (the adapter is what transfers; quantization error is not).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from tests.trainer.conftest import make_dataset
from tests.trainer.harness import events, new_run, train
from tuitrain.config import ConfigError, load_config, parse_config
from tuitrain.trainer.families import get_adapter

SETS = ("data.resolution=64", "training.epochs=4", "training.learning_rate=5e-3", "training.lr_warmup_steps=0",
        "lora.rank=8", "lora.alpha=8", "lora.train_ff=true", "saving.every_epochs=0",
        "training.gradient_checkpointing=false", "sampling.every_epochs=4", "sampling.steps=2")


@pytest.fixture(scope="module")
def flux_dev(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tuitrain.trainer.tiny import save_tiny_model

    return save_tiny_model("flux", tmp_path_factory.mktemp("flux") / "model")


@pytest.mark.parametrize(("mode", "most_bytes"), [("int8", 0.30), ("nf4", 0.16)])
def test_the_denoisers_linear_layers_are_stored_quantized(mode: str, most_bytes: float, flux_dev: Path) -> None:
    """Placement quantizes (no cast by the loop undoes it): the quantized layers hold at most `most_bytes`
    of their fp32 size (int8: 1 of 4 bytes plus row scales; nf4: half a byte plus an absmax per 64)."""
    from diffusers import FluxPipeline

    import bitsandbytes as bnb
    from tuitrain.trainer.quantize import weight_bytes

    config = parse_config({"model": {"family": "flux", "base": str(flux_dev), "quantize": mode}})
    adapter = get_adapter("flux")
    adapter.configure(config)
    parts = adapter.parts(FluxPipeline.from_pretrained(str(flux_dev), local_files_only=True), "auto")
    linear = {name: m for name, m in parts.denoiser.named_modules() if type(m) is torch.nn.Linear}
    large = {name for name, m in linear.items() if m.weight.numel() >= 4096}
    before = sum(linear[name].weight.numel() * 4 for name in large)
    adapter.place(parts, torch.device("cpu"), torch.float32)
    kind = bnb.nn.Linear4bit if mode == "nf4" else bnb.nn.Linear8bitLt
    quantized = {name: m for name, m in parts.denoiser.named_modules() if isinstance(m, kind)}
    assert set(quantized) == large and len(large) >= 10
    after = sum(weight_bytes(m) - (m.bias.numel() * m.bias.element_size() if m.bias is not None else 0)
                for m in quantized.values())
    assert after <= most_bytes * before, (after, before)


@pytest.mark.parametrize("mode", ["int8", "nf4"])
def test_a_lora_trained_on_a_quantized_base_moves_the_full_base_the_same_way(mode: str, flux_dev: Path,
                                                                             tmp_path: Path) -> None:
    from diffusers import FluxPipeline

    from tests.trainer.test_flux import adapter_from_backup, denoiser_output
    from tuitrain.trainer.quantize import quantize_linear_layers

    data = make_dataset(tmp_path / "data", count=2)
    run = new_run("q", flux_dev, data, *SETS, f"model.quantize={mode}", preset="flux-dev-lora", where=tmp_path)
    config = load_config(run.config)
    assert train(run) == 0, events(run)[-1]
    assert events(run, "sample"), "samples are drawn through the quantized transformer"

    adapter = get_adapter("flux")
    adapter.configure(config)

    def output(pipe: Any) -> torch.Tensor:
        return denoiser_output(adapter, pipe, 600.0)

    # The trainer's model: the quantized base and the adapter from the last backup.
    quantized = FluxPipeline.from_pretrained(str(flux_dev), local_files_only=True)
    quantize_linear_layers(quantized.transformer, mode, torch.float32, torch.device("cpu"))
    q_base = output(quantized)
    adapter_from_backup(run, config, adapter, quantized.transformer, [])
    q_delta = output(quantized) - q_base

    # What a user gets: diffusers applies the file to the unquantized base.
    full = FluxPipeline.from_pretrained(str(flux_dev), local_files_only=True)
    f_base = output(full)
    full.load_lora_weights(str(run.output / "q.safetensors"))
    f_delta = output(full) - f_base

    assert q_delta.abs().max() > 1e-3  # the adapter learned something
    cosine = torch.nn.functional.cosine_similarity(q_delta.flatten(), f_delta.flatten(), dim=0)
    relative = (q_delta - f_delta).norm() / f_delta.norm()
    assert cosine > 0.95 and relative < 0.3, (float(cosine), float(relative))


def test_a_unet_family_trains_on_a_quantized_base(tiny_model, tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data", count=2)
    run = new_run("u", tiny_model("sdxl"), data, "data.resolution=64", "training.epochs=1", "lora.rank=4",
                  "lora.alpha=4", "lora.train_ff=true", "sampling.every_epochs=0", "saving.every_epochs=0",
                  "model.quantize=nf4", preset="sdxl-lora", where=tmp_path)
    assert train(run) == 0, events(run)[-1]
    assert (run.output / "u.safetensors").is_file()


def test_a_quantized_fine_tune_is_one_line() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"model": {"family": "flux", "base": "x", "quantize": "nf4"}, "training": {"method": "finetune"},
                      "data": {"resolution": 512}})
    assert "model.quantize: \"nf4\" stores the denoiser's weights quantized and frozen" in str(err.value)
    assert "\n" not in str(err.value).strip()


@pytest.mark.parametrize("kind", ["lokr", "loha"])
def test_nf4_under_lokr_or_loha_is_one_line_and_int8_trains(kind: str, flux_dev: Path, tmp_path: Path) -> None:
    """peft's LoKr / LoHa take their factors' shapes from the base weight, which nf4 stores packed (a traceback
    at the first step, measured): refused by the config; int8 keeps the shape and trains."""
    with pytest.raises(ConfigError) as err:
        parse_config({"model": {"family": "flux", "base": "x", "quantize": "nf4"}, "lora": {"type": kind},
                      "data": {"resolution": 512}})
    assert f"model.quantize: \"nf4\" packs the weights LoKr and LoHa take their shapes from; with lora.type = " \
           f"\"{kind}\" use model.quantize = 'int8'" in str(err.value)
    data = make_dataset(tmp_path / "data", count=2)
    run = new_run("k", flux_dev, data, "data.resolution=64", "training.epochs=1", f"lora.type={kind}",
                  "lora.rank=4", "lora.alpha=4", "lora.train_ff=true", "sampling.every_epochs=0",
                  "saving.every_epochs=0", "model.quantize=int8", "training.gradient_checkpointing=false",
                  preset="flux-dev-lora", where=tmp_path)
    assert train(run) == 0, events(run)[-1]


def test_the_estimate_counts_quantized_weights() -> None:
    from tuitrain.tui.config_editor.estimate import estimate_vram

    table = {"model": {"family": "flux"}, "data": {"resolution": 1024}, "lora": {"rank": 16},
             "training": {"method": "lora", "gradient_checkpointing": True}}
    full, int8, nf4 = (estimate_vram({**table, "model": {"family": "flux", "quantize": q}}).weights_gib
                       for q in ("none", "int8", "nf4"))
    transformer = 11.90e9 / 2**30
    assert full - int8 == pytest.approx(transformer * 1.0, rel=0.01)  # bf16 (2 bytes) -> 1 byte
    assert full - nf4 == pytest.approx(transformer * (2 - 0.5625), rel=0.01)
