"""DoRA on FLUX.1 (lora.use_dora): the transformer trains DoRA, and the saved file, in diffusers' names with the
alpha / rank scale folded into lora_B and each layer's magnitude as `lora_magnitude_vector`, reproduces the
trainer's transformer in diffusers' load_lora_weights. What diffusers does not apply as trained (DoRA on
CLIP-L: its magnitudes are left unloaded) or what tuitrain does not write (kohya's layout) stops the run at
start in one line.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.trainer.conftest import make_dataset
from tests.trainer.harness import events, new_run, train
from tests.trainer.test_flux import TINY_SETS, adapter_from_backup, denoiser_output
from tuitrain.config import load_config
from tuitrain.trainer.families import get_adapter


@pytest.fixture(scope="module")
def flux_dev(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tuitrain.trainer.tiny import save_tiny_model

    return save_tiny_model("flux", tmp_path_factory.mktemp("flux-dora") / "model")


def test_a_dora_file_reproduces_the_trainers_transformer_in_diffusers(flux_dev: Path, tmp_path: Path) -> None:
    from diffusers import FluxPipeline

    data = make_dataset(tmp_path / "data", count=2)
    run = new_run("d", flux_dev, data, *TINY_SETS, "training.epochs=2", "lora.alpha=2", "lora.use_dora=true",
                  "saving.diffusers_format=true", preset="flux-dev-lora", where=tmp_path)
    config = load_config(run.config)
    assert config.lora.use_dora and config.lora.rank == 8
    assert train(run) == 0, events(run)[-1]

    tensors = load_file(run.output / "d.safetensors")
    magnitudes = [k for k in tensors if k.endswith(".lora_magnitude_vector")]
    assert magnitudes and all(k.startswith("transformer.") for k in tensors)
    assert {k.removesuffix(".lora_magnitude_vector") for k in magnitudes} == {
        k.removesuffix(".lora_A.weight") for k in tensors if k.endswith(".lora_A.weight")}
    assert not any(k.endswith(".alpha") for k in tensors)

    mine = FluxPipeline.from_pretrained(str(flux_dev), local_files_only=True)
    adapter = get_adapter("flux")
    adapter.configure(config)
    adapter_from_backup(run, config, adapter, mine.transformer, [])
    theirs = FluxPipeline.from_pretrained(str(flux_dev), local_files_only=True)
    theirs.load_lora_weights(str(run.output / "d.safetensors"))
    from peft.tuners.lora import LoraLayer

    assert all(m.use_dora[next(iter(m.use_dora))] for m in theirs.transformer.modules() if isinstance(m, LoraLayer))

    base = denoiser_output(adapter, FluxPipeline.from_pretrained(str(flux_dev), local_files_only=True))
    trained, loaded = denoiser_output(adapter, mine), denoiser_output(adapter, theirs)
    assert not torch.allclose(base, trained, atol=1e-4)  # the DoRA does something
    torch.testing.assert_close(loaded, trained, rtol=1e-4, atol=1e-5)
    # saving.diffusers_format's folder (diffusers' own writer) stores the magnitudes in saving.dtype (fp16): the
    # same DoRA, up to that rounding (~5e-4 here), where the .safetensors keeps them in fp32.
    folder = FluxPipeline.from_pretrained(str(flux_dev), local_files_only=True)
    folder.load_lora_weights(str(run.output / "d-diffusers"))
    from_folder = denoiser_output(adapter, folder)
    torch.testing.assert_close(from_folder, trained, rtol=0, atol=2e-3)
    assert (from_folder - trained).abs().max() < 0.02 * (trained - base).abs().max()


@pytest.mark.parametrize(("sets", "message"), [
    (("lora.train_text_encoder=true",), "lora.use_dora: diffusers does not load DoRA magnitudes into CLIP-L"),
    (("flux.lora_layout=kohya",), "lora.use_dora: kohya's FLUX.1 layout (flux.lora_layout = 'kohya') is written "
                                  "without DoRA here"),
])
def test_dora_that_would_not_load_as_trained_stops_the_run_at_start(sets: tuple[str, ...], message: str,
                                                                    flux_dev: Path, tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data", count=2)
    run = new_run("r", flux_dev, data, *TINY_SETS, "lora.use_dora=true", *sets, preset="flux-dev-lora",
                  where=tmp_path)
    assert train(run) == 1
    failed = events(run, "finished")[-1]
    assert failed["status"] == "failed" and failed["reason"].startswith(message), failed["reason"]
    assert failed.get("step", 0) == 0


def test_check_tells_flux_dora_users_which_tools_apply_it(flux_dev: Path, tmp_path: Path) -> None:
    """FLUX.1's own file holds the DoRA (no NAME-diffusers folder needed); ComfyUI and Forge read only dora_scale."""
    from tuitrain.cli.cmd_check import config_warnings

    data = make_dataset(tmp_path / "data", count=2)
    run = new_run("w", flux_dev, data, *TINY_SETS, "lora.use_dora=true", preset="flux-dev-lora", where=tmp_path)
    (warning,) = config_warnings(load_config(run.config))
    assert warning.startswith("lora.use_dora: only diffusers applies DoRA as trained (the .safetensors holds")
    assert "ComfyUI and Forge read only kohya's dora_scale" in warning and "diffusers_format" not in warning
