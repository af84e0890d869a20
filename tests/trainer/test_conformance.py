"""The contract every registered family meets, parametrized over the registry (issue 15).

A new family gets these tests by registering (tuitrain/families.py + its home under
tuitrain/trainer/families/): for every family and flavour, its tiny model loads from a
diffusers folder and from a single file; for every method, a run trains, saves a file the
next tool loads (diffusers' own loaders) with a visible effect, and a run stopped after
its first step resumes to exactly the uninterrupted run's result. In-process and tiny:
a few seconds per family and method with one thread.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from tests.trainer.conftest import make_dataset
from tuitrain.config import parse_config
from tuitrain.families import FAMILIES
from tuitrain.runs import RunDir
from tuitrain.runs.events import iter_events
from tuitrain.trainer.families import family_files, get_adapter
from tuitrain.trainer.loop import run_training

FLAVOURS = [(name, flavour.name) for name, info in FAMILIES.items() for flavour in info.flavours]
METHODS = ["lora", "embedding", "finetune"]
CASES = [(name, method) for name in FAMILIES for method in METHODS if method != "embedding" or family_files(name).embedding_keys]
TOKEN = "<conf>"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("conformance") / "data", count=2)


@pytest.fixture(scope="module")
def flavour_model(tmp_path_factory: pytest.TempPathFactory):
    """The tiny model of a family's flavour (SD 2.x 512-base predicts epsilon; Flux schnell has no guidance)."""
    from tuitrain.trainer.tiny import save_tiny_model

    made: dict[tuple[str, str], Path] = {}

    def get(family: str, flavour: str) -> Path:
        if (family, flavour) not in made:
            folder = tmp_path_factory.mktemp(f"tiny-{family}-{flavour}") / "model"
            made[family, flavour] = save_tiny_model(family, folder, flavour=flavour)
        return made[family, flavour]

    return get


def _config(family: str, method: str, base: Path, data: Path, /, **sections: dict[str, Any]) -> Any:
    table: dict[str, Any] = {
        "model": {"family": family, "base": str(base)},
        "data": {"resolution": 64, "concepts": [{"path": str(data)}]},
        "training": {"method": method, "max_steps": 2, "batch_size": 1, "learning_rate": 1e-3, "seed": 5},
        "lora": {"rank": 2, "alpha": 2},
        "embedding": {"token": TOKEN, "vectors": 2, "initial_text": "red"},
        "sampling": {"every_epochs": 0},
        "saving": {"every_epochs": 0, "backup_on_stop": True},
    }
    if method == "embedding":  # its captions must hold the token it learns
        table["data"]["concepts"][0].update(caption="instance", instance_prompt=f"a photo of {TOKEN}")
    for key, values in sections.items():
        table[key] = {**table.get(key, {}), **values}
    return parse_config(table)


def _train(root: Path, config: Any, stop_after: int | None = None) -> RunDir:
    """Train in-process; `stop_after`: ask the trainer to stop (as Ctrl-C does) once that step is done."""
    run = RunDir(root)
    run.create_folders()

    def display(event: dict[str, Any]) -> None:
        if stop_after is not None and event["type"] == "step" and event["step"] == stop_after:
            os.kill(os.getpid(), signal.SIGINT)  # the trainer's own handler turns it into a stop request

    code = run_training(run, config, root.parent, display)
    finished = [e for _, e in iter_events(run.events) if e["type"] == "finished"][-1]
    assert code == 0, finished
    return run


def _adapter(config: Any) -> Any:
    adapter = get_adapter(config.model.family)
    adapter.configure(config)
    return adapter


@pytest.mark.parametrize(("family", "flavour"), FLAVOURS)
def test_loads_from_a_folder_and_from_a_single_file(family: str, flavour: str, flavour_model, data: Path,
                                                    tmp_path: Path) -> None:
    from tuitrain.trainer.export.single_file import save_single_file
    from tuitrain.trainer.loading import ModelLoadError, load_pipeline

    info = FAMILIES[family]
    folder = flavour_model(family, flavour)
    expected = info.flavour(flavour)
    # model.flavour chooses; the trainer's parts then report it (and train its prediction type).
    # An editing flavour learns from pairs: the images are their own references here (loading is what is tested).
    pairs = {"data": {"concepts": [{"path": str(data), "references": str(data)}]}} if expected.editing else {}
    config = _config(family, "lora", folder, data, model={"flavour": flavour}, **pairs)
    folder_pipe = load_pipeline(config.model, family, config_dir=tmp_path)
    parts = _adapter(config).parts(folder_pipe, "auto")
    assert parts.flavour == flavour and parts.prediction_type == expected.prediction

    files = family_files(family)
    if not files.single_file and not files.denoiser_file:
        # Not built for this family yet: one line naming the file, never a converter's traceback.
        (tmp_path / "model.safetensors").write_bytes(b"")
        with pytest.raises(ModelLoadError, match=r"^model\.base: '.*model\.safetensors' is a single file; "):
            load_pipeline(_config(family, "lora", tmp_path / "model.safetensors", data).model, family,
                          config_dir=tmp_path)
        return
    if files.single_file:
        file = save_single_file(folder_pipe, family, tmp_path / "model.safetensors")
    else:  # the denoiser alone in its original layout; the other components come from model.config
        from tuitrain.trainer.export.single_file import save_denoiser_file

        state = _adapter(config).denoiser_file_state(parts.denoiser)
        file = save_denoiser_file(state, family, tmp_path / "model.safetensors")
    # The tiny architecture is not the public one: model.config names it, as a user's would.
    file_config = _config(family, "lora", file, data, model={"config": str(folder), "flavour": flavour}, **pairs)
    file_pipe = load_pipeline(file_config.model, family, config_dir=tmp_path)
    file_parts = _adapter(file_config).parts(file_pipe, "auto")
    for a, b in ((parts.denoiser, file_parts.denoiser), *zip(parts.text_encoders, file_parts.text_encoders)):
        mine, theirs = a.state_dict(), b.state_dict()
        assert mine.keys() <= theirs.keys()
        assert all(torch.equal(mine[k], theirs[k]) for k in mine), type(a).__name__


@pytest.mark.parametrize(("family", "method"), CASES)
def test_trains_saves_what_diffusers_loads_and_resumes_exactly(family: str, method: str, tiny_model, data: Path,
                                                                tmp_path: Path) -> None:
    base = tiny_model(family)
    config = _config(family, method, base, data)
    whole = _train(tmp_path / "whole", config)
    stopped = _train(tmp_path / "stopped", config, stop_after=1)
    events = [e for _, e in iter_events(stopped.events)]
    assert [e["status"] for e in events if e["type"] == "finished"] == ["stopped"]
    _train(tmp_path / "stopped", config)  # the same run again: resumes from the step-1 backup
    started = [e for _, e in iter_events(stopped.events) if e["type"] == "started"]
    assert started[-1]["resumed_from"] == 1

    expected, result = _final_tensors(whole), _final_tensors(stopped)
    assert expected.keys() == result.keys() and expected
    assert [k for k in expected if not torch.equal(expected[k], result[k])] == []

    _loads_in_diffusers(family, method, base, whole.output / "whole.safetensors", whole.output / "whole-diffusers")


def _final_tensors(run: RunDir) -> dict[str, torch.Tensor]:
    """Every tensor of the run's final save: its file, or (a fine-tune without a single file) its folder's files."""
    final = [e for _, e in iter_events(run.events) if e["type"] == "saved" and e["final"]][-1]
    path = Path(final["path"])
    if not path.is_dir():
        return load_file(path)
    return {f"{file.relative_to(path)}:{key}": value
            for file in sorted(path.rglob("*.safetensors")) for key, value in load_file(file).items()}


@torch.no_grad()
def _loads_in_diffusers(family: str, method: str, base: Path, file: Path, folder: Path) -> None:
    """The saved file loads with diffusers' own loader for its kind, and changes what the model computes."""
    from diffusers import DiffusionPipeline

    def denoise(pipe: Any, prompt: str) -> torch.Tensor:
        adapter = get_adapter(family)
        parts = adapter.parts(pipe, "auto")
        pipe.to(torch.float32)
        from tuitrain.trainer.families.base import LatentBatch

        latents = torch.randn(1, FAMILIES[family].latent_channels, 8, 8, generator=torch.Generator().manual_seed(0))
        size_info = adapter.size_info([_Assignment()])
        batch = LatentBatch(latents, adapter.encode_text(parts, [prompt]), size_info)
        return adapter.predict(parts, latents, torch.tensor([500]), batch)

    before_pipe = DiffusionPipeline.from_pretrained(str(base), local_files_only=True)
    prompt = f"a photo of {TOKEN}" if method == "embedding" else "a red square with a blue mark"
    if method == "lora":
        before = denoise(before_pipe, prompt)
        if hasattr(before_pipe, "load_lora_weights"):
            before_pipe.load_lora_weights(str(file))
        else:  # diffusers has no LoRA loader for this family (PixArt): the home's peft loader, what a user writes
            from tuitrain.trainer.families import home_module

            home_module(family, "lora").load_lora_weights(before_pipe, file)
        after = denoise(before_pipe, prompt)
    elif method == "embedding":
        before = denoise(before_pipe, "a photo of red red")  # the init text: what the token starts as
        keys = family_files(family).embedding_keys
        state = load_file(file)
        encoders = family_files(family).text_encoder_components
        for key, encoder in zip(keys, encoders):
            tokenizer = encoder.replace("text_encoder", "tokenizer")
            before_pipe.load_textual_inversion(state[key], token=TOKEN, text_encoder=getattr(before_pipe, encoder),
                                               tokenizer=getattr(before_pipe, tokenizer))
        after = denoise(before_pipe, prompt)
    else:
        before = denoise(before_pipe, prompt)
        assert folder.is_dir(), "a fine-tune's final save writes a diffusers folder too"
        after = denoise(DiffusionPipeline.from_pretrained(str(folder), local_files_only=True), prompt)
    assert torch.isfinite(after).all()
    assert not torch.allclose(before, after), f"the {method} file changed nothing"


class _Assignment:
    """A 64x64 image in a 64x64 bucket, for size-conditioned families."""

    original_size = (64, 64)
    scaled_crop = (0, 0, 64, 64)
    bucket = (64, 64)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_full_size_denoiser_and_bench_batch_match_the_registry(family: str) -> None:
    """bench/ builds the public architecture from the shipped configs (on the meta device here: no memory);
    its size is the registry's VRAM-estimate figure, and the bench batch fits it."""
    from tuitrain.trainer.families.base import ModelParts

    adapter = get_adapter(family)
    with torch.device("meta"):
        denoiser = adapter.full_size_denoiser()
        count = sum(p.numel() for p in denoiser.parameters())
        expected = FAMILIES[family].memory.params[0]
        assert abs(count - expected) / expected < 0.01, (count, expected)
        batch = adapter.random_batch(denoiser, 2, FAMILIES[family].default_resolution, torch.device("meta"),
                                     torch.float32)
        parts = ModelParts(pipeline=None, denoiser=denoiser, vae=None, text_encoders=[], tokenizers=[],
                           noise_scheduler=None, prediction_type="epsilon")
        out = adapter.predict(parts, batch.latents, torch.zeros(2, device="meta"), batch)
    assert out.shape == batch.latents.shape
