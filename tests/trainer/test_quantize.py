"""model.quantize: the frozen denoiser in int8 / nf4 (bitsandbytes) or fp8 / int4 (optimum-quanto), on the CPU
here, an fp32 adapter on top; model.quantize_text_encoders the same for the text encoders.

What must hold: the linear layers really are stored quantized (bytes measured), training and
sampling run through `tuitrain train`, the saved LoRA, applied by diffusers to the unquantized
base, moves the model the way it moved the quantized one (the adapter is what transfers;
quantization error is not), and a run killed mid-way resumes to the uninterrupted run's file bit for bit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from tests.trainer.conftest import make_dataset
from tests.trainer.harness import events, new_run, train, train_cli
from tests.trainer.resume import crash_mid_run, resume_matches
from tuitrain.config import ConfigError, load_config, parse_config
from tuitrain.trainer.families import get_adapter
from tuitrain.trainer.families.base import LatentBatch

CAPTION = "a red square with a blue mark"
SETS = ("data.resolution=64", "training.epochs=4", "training.learning_rate=5e-3", "training.lr_warmup_steps=0",
        "lora.rank=8", "lora.alpha=8", "lora.train_ff=true", "lora.train_conv=false", "saving.every_epochs=0",
        "training.gradient_checkpointing=false", "sampling.every_epochs=4", "sampling.steps=2")
PRESET = {"flux": "flux-dev-lora", "sdxl": "sdxl-lora"}
PIPELINE = {"flux": "FluxPipeline", "sdxl": "StableDiffusionXLPipeline"}
# How close the full base + the saved LoRA comes to the trainer's quantized base + adapter: the change
# the LoRA makes to the denoiser's output, compared (cosine, and the norm of the difference relative to the
# full base's change). Measured on these tiny models (4 epochs, lr 5e-3, CPU): Flux int8 1.0000 / 0.002,
# fp8 1.0000 / 0.008, int4 0.9998 / 0.021, nf4 0.9995 / 0.032; SDXL int8 1.0000 / 0.009, int4 0.988 / 0.156,
# nf4 0.980 / 0.200. The bounds leave room for other seeds and machines; what they rule out is a LoRA that
# only works on the quantized base (cosine near 0) or one saved mis-scaled (relative near 1).
MIN_COSINE = {"int8": 0.99, "fp8": 0.99, "nf4": 0.95, "int4": 0.95}
MAX_RELATIVE = {"int8": 0.1, "fp8": 0.1, "nf4": 0.35, "int4": 0.35}


@pytest.fixture(scope="module")
def flux_dev(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tuitrain.trainer.tiny import save_tiny_model

    return save_tiny_model("flux", tmp_path_factory.mktemp("flux") / "model")


def _model(family: str, flux_dev: Path, tiny_model: Any) -> Path:
    return flux_dev if family == "flux" else tiny_model(family)


def _pipeline(family: str, model: Path) -> Any:
    import diffusers

    return getattr(diffusers, PIPELINE[family]).from_pretrained(str(model), local_files_only=True)


@torch.no_grad()
def _output(adapter: Any, pipe: Any) -> torch.Tensor:
    """The denoiser's prediction for fixed latents (seed 0), caption and a mid timestep, through the family adapter."""
    parts = adapter.parts(pipe, "auto")
    latents = torch.randn(1, adapter.info.latent_channels, 8, 8, generator=torch.Generator().manual_seed(0))
    size_info = torch.tensor([[64.0, 64.0, 0.0, 0.0, 64.0, 64.0]]) if adapter.info.name == "sdxl" else None
    batch = LatentBatch(latents, adapter.encode_text(parts, [CAPTION]), size_info=size_info)
    return adapter.predict(parts, latents, torch.tensor([600.0]), batch)


def _with_backup_adapter(run: Any, config: Any, adapter: Any, denoiser: torch.nn.Module) -> None:
    """Inject the run's adapter into `denoiser` and load its last backup: the trainer's model."""
    from tuitrain.trainer import backup as backups
    from tuitrain.trainer.methods.lora import chosen_modules, inject_lora, load_lora_state

    handles = inject_lora(denoiser, [], config.lora, unet_target_modules=list(adapter.attention_modules),
                          unet_ff_modules=list(adapter.feed_forward_modules), unet_conv_modules=[],
                          text_encoder_target_modules=list(adapter.text_encoder_modules),
                          denoiser_name="transformer" if adapter.info.name == "flux" else "unet",
                          denoiser_modules=chosen_modules(config))
    found = backups.latest_backup(run.checkpoints)
    assert found is not None and found.step == events(run, "finished")[-1]["step"]
    load_lora_state(handles, found.weights)


@pytest.mark.parametrize(("mode", "most_bytes"), [("int8", 0.30), ("nf4", 0.16), ("fp8", 0.30), ("int4", 0.19)])
def test_the_linear_layers_are_stored_quantized(mode: str, most_bytes: float, flux_dev: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Placement quantizes (no cast by the loop undoes it): the quantized layers hold at most `most_bytes`
    of their fp32 size (int8 / fp8: 1 of 4 bytes plus row scales; nf4: half a byte plus an absmax per 64;
    int4: half a byte plus a scale and shift per 128), in the transformer and, with quantize_text_encoders,
    in CLIP and T5 (whose tiny layers need a lower size threshold than a real model's to be quantized)."""
    from diffusers import FluxPipeline

    from tuitrain.trainer import quantize
    from tuitrain.trainer.quantize import weight_bytes

    monkeypatch.setattr(quantize, "MIN_WEIGHTS", 1024)
    MIN_WEIGHTS = quantize.MIN_WEIGHTS

    config = parse_config({"model": {"family": "flux", "base": str(flux_dev), "quantize": mode,
                                     "quantize_text_encoders": mode}})
    adapter = get_adapter("flux")
    adapter.configure(config)
    parts = adapter.parts(FluxPipeline.from_pretrained(str(flux_dev), local_files_only=True), "auto")
    models = {"transformer": parts.denoiser, "clip": parts.text_encoders[0], "t5": parts.text_encoders[1]}
    large = {key: {name for name, m in model.named_modules()
                   if type(m) is torch.nn.Linear and m.weight.numel() >= MIN_WEIGHTS} for key, model in models.items()}
    before = {key: sum(models[key].get_submodule(name).weight.numel() * 4 for name in names)
              for key, names in large.items()}
    assert len(large["transformer"]) >= 10 and len(large["clip"]) + len(large["t5"]) >= 2  # the tiny CLIP's are small
    adapter.place(parts, torch.device("cpu"), torch.float32)
    for key, model in models.items():
        quantized = {name: model.get_submodule(name) for name in large[key]}
        assert all(type(m) is not torch.nn.Linear for m in quantized.values()), key  # every one swapped
        after = sum(weight_bytes(m) - (m.bias.numel() * m.bias.element_size() if m.bias is not None else 0)
                    for m in quantized.values())
        assert after <= most_bytes * before[key], (key, after, before[key])


@pytest.mark.parametrize(("family", "mode", "cli"), [
    ("flux", "int8", True), ("flux", "int4", True), ("flux", "nf4", False), ("flux", "fp8", False),
    ("sdxl", "int8", True), ("sdxl", "nf4", True), ("sdxl", "int4", False),
])
def test_a_lora_trained_on_a_quantized_base_moves_the_full_base_the_same_way(
        family: str, mode: str, cli: bool, flux_dev: Path, tiny_model: Any, tmp_path: Path) -> None:
    """The done-when of issue 17: each family trains with an int8 and a 4-bit base through `tuitrain train`
    (the others in this process), draws samples through the quantized denoiser, and its file, loaded by
    diffusers onto the unquantized base, changes the output as the trainer's model changed (bounds above)."""
    from tuitrain.trainer.quantize import quantize_linear_layers

    model = _model(family, flux_dev, tiny_model)
    data = make_dataset(tmp_path / "data", count=2)
    run = new_run("q", model, data, *SETS, f"model.quantize={mode}", "saving.backup_at_end=true",
                  preset=PRESET[family], where=tmp_path)
    config = load_config(run.config)
    if cli:
        out = train_cli(str(run.root))  # a real `tuitrain train <run folder>` process
        assert out.returncode == 0, out.stderr[-3000:]
    else:
        assert train(run) == 0, events(run)[-1]
    assert events(run, "sample"), "samples are drawn through the quantized denoiser"
    saved = run.output / "q.safetensors"
    from safetensors import safe_open

    with safe_open(str(saved), "pt") as f:
        header = f.metadata()
        assert all(f.get_tensor(k).dtype in (torch.float32, torch.bfloat16, torch.float16) for k in f.keys())
    assert header["tuitrain_base_quantization"] == mode  # ComfyUI users are told to match the base precision

    adapter = get_adapter(family)
    adapter.configure(config)
    # The trainer's model: the quantized base and the adapter from the last backup.
    quantized = _pipeline(family, model)
    quantize_linear_layers(quantized.transformer if family == "flux" else quantized.unet, mode, torch.float32,
                           torch.device("cpu"))
    q_base = _output(adapter, quantized)
    _with_backup_adapter(run, config, adapter, quantized.transformer if family == "flux" else quantized.unet)
    q_delta = _output(adapter, quantized) - q_base

    # What a user gets: diffusers applies the file to the unquantized base.
    full = _pipeline(family, model)
    f_base = _output(adapter, full)
    full.load_lora_weights(str(saved))
    f_delta = _output(adapter, full) - f_base

    assert q_delta.abs().max() > 1e-3  # the adapter learned something
    cosine = float(torch.nn.functional.cosine_similarity(q_delta.flatten(), f_delta.flatten(), dim=0))
    relative = float((q_delta - f_delta).norm() / f_delta.norm())
    print(f"{family} {mode}: cosine {cosine:.4f} relative {relative:.4f}")
    assert cosine > MIN_COSINE[mode] and relative < MAX_RELATIVE[mode], (cosine, relative)


@pytest.mark.parametrize(("family", "mode"), [("flux", "int4"), ("flux", "int8"), ("sdxl", "nf4"), ("sdxl", "fp8")])
def test_a_quantized_run_killed_mid_way_resumes_bit_identical(family: str, mode: str, flux_dev: Path,
                                                              tiny_model: Any, tmp_path: Path) -> None:
    """The quantized base is rebuilt from the same file on resume: the run killed after a step (in this
    process, resume.crash_mid_run) and resumed ends with the uninterrupted run's file, bit for bit."""
    model, data = _model(family, flux_dev, tiny_model), make_dataset(tmp_path / "data", count=4)
    common = (*SETS, "training.epochs=3", "sampling.every_epochs=0", f"model.quantize={mode}",
              "saving.backup_every_steps=3", "saving.backup_keep_last=2")
    straight = new_run("straight", model, data, *common, preset=PRESET[family], where=tmp_path)
    assert train(straight) == 0, events(straight)[-1]
    broken = new_run("broken", model, data, *common, preset=PRESET[family], where=tmp_path)
    last_step = crash_mid_run(broken, (4, 10))
    resume_matches(broken, straight.output / "straight.safetensors", last_step, backup_every=3, in_process=True)


def test_a_quantized_fine_tune_is_one_line() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"model": {"family": "flux", "base": "x", "quantize": "nf4"}, "training": {"method": "finetune"},
                      "data": {"resolution": 512}})
    assert "model.quantize: \"nf4\" stores the denoiser's weights quantized and frozen" in str(err.value)
    assert "\n" not in str(err.value).strip()
    with pytest.raises(ConfigError) as err:
        parse_config({"model": {"family": "sdxl", "base": "x", "quantize_text_encoders": "int8"},
                      "training": {"method": "finetune"}, "finetune": {"train_text_encoder": True}})
    assert "model.quantize_text_encoders: \"int8\" stores the text encoders quantized and frozen" in str(err.value)
    assert "\n" not in str(err.value).strip()
    # A fine-tune of the denoiser alone may keep its frozen encoders quantized.
    parse_config({"model": {"family": "sdxl", "base": "x", "quantize_text_encoders": "int8"},
                  "training": {"method": "finetune"}})


@pytest.mark.parametrize("kind", ["lokr", "loha"])
def test_nf4_under_lokr_or_loha_is_one_line_and_the_others_train(kind: str, flux_dev: Path, tmp_path: Path) -> None:
    """peft's LoKr / LoHa take their factors' shapes from the base weight, which nf4 stores packed (a traceback
    at the first step, measured): refused by the config; int8 and int4 keep the shape and train."""
    with pytest.raises(ConfigError) as err:
        parse_config({"model": {"family": "flux", "base": "x", "quantize": "nf4"}, "lora": {"type": kind},
                      "data": {"resolution": 512}})
    assert f"model.quantize: \"nf4\" packs the weights LoKr and LoHa take their shapes from; with lora.type = " \
           f"\"{kind}\" use model.quantize = 'int8', 'fp8' or 'int4'" in str(err.value)
    data = make_dataset(tmp_path / "data", count=2)
    for mode in ("int8", "int4"):
        run = new_run(f"k{mode}", flux_dev, data, "data.resolution=64", "training.epochs=1", f"lora.type={kind}",
                      "lora.rank=4", "lora.alpha=4", "lora.train_ff=true", "sampling.every_epochs=0",
                      "saving.every_epochs=0", f"model.quantize={mode}", "training.gradient_checkpointing=false",
                      preset="flux-dev-lora", where=tmp_path)
        assert train(run) == 0, events(run)[-1]


def test_without_optimum_quanto_fp8_is_one_line(flux_dev: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """fp8 / int4 need the quantize extra: a machine without it gets the install command, not a traceback."""
    import sys

    monkeypatch.setitem(sys.modules, "optimum.quanto", None)  # import optimum.quanto raises ImportError
    data = make_dataset(tmp_path / "data", count=2)
    run = new_run("nq", flux_dev, data, "data.resolution=64", "model.quantize=fp8", preset="flux-dev-lora",
                  where=tmp_path)
    assert train(run) == 1
    message = events(run, "error")[-1]["message"]
    assert message == ("model.quantize: 'fp8' needs optimum-quanto, which is not installed: pip install -c "
                       "constraints.txt 'tuitrain[quantize]' (optimum-quanto); or choose model.quantize = 'int8' / "
                       "'nf4' (bitsandbytes)")
    # `tuitrain check` says the same before anything loads (torch-free: the spec is looked up, not imported).
    from tuitrain.trainer.loading import ModelLoadError
    from tuitrain.trainer.loading.preflight import inspect_base

    with pytest.raises(ModelLoadError) as err:
        inspect_base(load_config(run.config).model, "flux", run.root)
    assert str(err.value) == message


def test_the_estimate_counts_quantized_weights() -> None:
    from tuitrain.tui.config_editor.estimate import estimate_vram

    table = {"model": {"family": "flux"}, "data": {"resolution": 1024}, "lora": {"rank": 16},
             "training": {"method": "lora", "gradient_checkpointing": True}}
    full, int8, nf4, fp8, int4 = (estimate_vram({**table, "model": {"family": "flux", "quantize": q}}).weights_gib
                                  for q in ("none", "int8", "nf4", "fp8", "int4"))
    transformer = 11.90e9 / 2**30
    assert full - int8 == pytest.approx(transformer * 1.0, rel=0.01)  # bf16 (2 bytes) -> 1 byte
    assert full - fp8 == pytest.approx(transformer * 1.0, rel=0.01)
    assert full - nf4 == pytest.approx(transformer * (2 - 0.5625), rel=0.01)
    assert full - int4 == pytest.approx(transformer * (2 - 0.53125), rel=0.01)


@pytest.mark.parametrize("mode", ["int8", "nf4", "int4"])
def test_a_folders_denoiser_is_quantized_as_it_loads_into_the_layers_placement_makes(mode: str, flux_dev: Path) -> None:
    """loading/quantized.py builds the transformer empty and quantizes each large layer as its weights are read
    (no full-precision model in RAM): the layers it makes compute exactly what loading it whole and quantizing
    afterwards (place()'s path for single files) makes."""
    from diffusers import FluxTransformer2DModel

    from tuitrain.trainer.loading.quantized import load_quantized
    from tuitrain.trainer.quantize import is_target, quantize_linear_layers

    streamed = load_quantized(FluxTransformer2DModel, flux_dev / "transformer", mode, torch.float32, torch.device("cpu"))
    whole = FluxTransformer2DModel.from_pretrained(str(flux_dev / "transformer"), local_files_only=True)
    count = quantize_linear_layers(whole, mode, torch.float32, torch.device("cpu"))
    assert not any(is_target(m) for m in streamed.modules())
    layers = dict(whole.named_modules())
    compared = 0
    for name, module in streamed.named_modules():
        if type(module) is not type(layers[name]) or type(module).__module__.startswith("diffusers"):
            continue
        if hasattr(module, "in_features") and type(module) is not torch.nn.Linear:
            x = torch.randn(3, module.in_features, generator=torch.Generator().manual_seed(1))
            with torch.no_grad():
                assert torch.equal(module(x), layers[name](x)), name
            compared += 1
    assert compared == count >= 10
    assert all(torch.equal(a, b) for a, b in zip(streamed.state_dict().values(), whole.state_dict().values())
               if a.dtype == torch.float32 and type(a) is torch.Tensor and type(b) is torch.Tensor)


def test_a_quantized_run_loads_its_folder_quantized_and_a_short_file_is_one_line(
        flux_dev: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from safetensors.torch import load_file, save_file

    from tuitrain.trainer.loading import quantized

    calls: list[str] = []
    original = quantized.load_quantized
    monkeypatch.setattr(quantized, "load_quantized", lambda cls, *a: calls.append(cls.__name__) or original(cls, *a))
    data = make_dataset(tmp_path / "data", count=2)
    run = new_run("ok", flux_dev, data, *SETS, "training.epochs=1", "sampling.every_epochs=0", "model.quantize=int8",
                  preset="flux-dev-lora", where=tmp_path)
    assert train(run) == 0, events(run)[-1]
    assert calls == ["FluxTransformer2DModel"]

    broken = tmp_path / "broken"
    shutil.copytree(flux_dev, broken)
    weights = broken / "transformer" / "diffusion_pytorch_model.safetensors"
    tensors = load_file(weights)
    dropped = sorted(tensors)[0]
    del tensors[dropped]
    save_file(tensors, weights)
    run = new_run("short", broken, data, *SETS, "model.quantize=int8", preset="flux-dev-lora", where=tmp_path)
    assert train(run) == 1
    message = events(run, "error")[-1]["message"]
    assert message.startswith(f"model.base: cannot load the denoiser in '{broken / 'transformer'}': the weights in ")
    assert dropped in message and "\n" not in message


def test_the_tensor_reader_gives_what_safetensors_gives(tmp_path: Path) -> None:
    """loading/quantized.read_tensors reads without a memory map: every dtype a denoiser file holds, empty and
    scalar tensors included, equal to safetensors' own load_file."""
    from safetensors.torch import load_file, save_file

    from tuitrain.trainer.loading.quantized import read_tensors

    tensors = {"b.weight": torch.randn(5, 3).to(torch.bfloat16), "a.f16": torch.randn(7).half(),
               "c.f32": torch.randn(2, 3, 4), "d.i64": torch.arange(6), "e.empty": torch.zeros(0, 3),
               "f.scalar": torch.tensor(2.5), "g.u8": torch.arange(9, dtype=torch.uint8).reshape(3, 3),
               "h.fp8": torch.randn(4, 4).to(torch.float8_e4m3fn), "i.bool": torch.tensor([True, False])}
    save_file(tensors, str(tmp_path / "t.safetensors"), metadata={"format": "pt"})
    read = list(read_tensors(tmp_path / "t.safetensors"))
    assert [name for name, _ in read] == sorted(tensors)
    expected = load_file(str(tmp_path / "t.safetensors"))
    for name, tensor in read:
        assert tensor.dtype == expected[name].dtype and tensor.shape == expected[name].shape, name
        assert torch.equal(tensor.view(torch.uint8) if tensor.dtype == torch.float8_e4m3fn else tensor,
                           expected[name].view(torch.uint8) if tensor.dtype == torch.float8_e4m3fn else expected[name])


def test_the_estimates_quantized_share_is_what_quantize_linear_layers_takes() -> None:
    """estimate.QUANTIZED_SHARE (torch-free constants) against the public architectures built on the meta device:
    the weights trainer/quantize.py would store quantized."""
    import json

    import diffusers

    from tuitrain.trainer.families import family_files
    from tuitrain.trainer.quantize import is_target
    from tuitrain.tui.config_editor.estimate import QUANTIZED_SHARE

    for family in ("sd15", "sdxl", "flux"):
        files = family_files(family)
        config = json.loads((files.configs / files.denoiser_component / "config.json").read_text(encoding="utf-8"))
        with torch.device("meta"):
            model = getattr(diffusers, config["_class_name"]).from_config(config)
        total = sum(p.numel() for p in model.parameters())
        share = sum(m.weight.numel() for m in model.modules() if is_target(m)) / total
        assert share == pytest.approx(QUANTIZED_SHARE.get(family, 1.0), abs=0.002), family


def test_an_embedding_trained_on_a_quantized_base_records_it(tiny_model: Any, tmp_path: Path) -> None:
    """Textual inversion trains through the frozen UNet: an int8 one works, and the file's header says so."""
    from safetensors import safe_open

    data = make_dataset(tmp_path / "data", count=2)
    for caption in data.glob("*.txt"):
        caption.write_text("a photo of <tuitrain>")
    run = new_run("emb", tiny_model("sd15"), data, "data.resolution=64", "training.epochs=1", "sampling.every_epochs=0",
                  "saving.every_epochs=0", "model.quantize=int8", preset="sd15-embedding", where=tmp_path)
    assert train(run) == 0, events(run)[-1]
    with safe_open(str(run.output / "emb.safetensors"), "pt") as f:
        assert f.metadata()["tuitrain_base_quantization"] == "int8"


def test_a_hub_models_denoiser_is_quantized_as_it_loads_from_the_cache(flux_dev: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """model.base = a hub id (what the presets name): the cached snapshot loads as a local folder does, its
    transformer quantized while it loads. The cache is laid out as huggingface_hub writes it, offline."""
    import shutil

    from huggingface_hub import constants

    from tuitrain.trainer.loading import quantized

    cache = tmp_path / "hf-cache"
    repo = cache / "models--tuitrain-test--tiny-flux"
    shutil.copytree(flux_dev, repo / "snapshots" / ("0" * 40))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    calls: list[str] = []
    original = quantized.load_quantized
    monkeypatch.setattr(quantized, "load_quantized", lambda cls, *a: calls.append(cls.__name__) or original(cls, *a))
    data = make_dataset(tmp_path / "data", count=2)
    run = new_run("hub", Path("tuitrain-test/tiny-flux"), data, *SETS, "training.epochs=1", "sampling.every_epochs=0",
                  "model.quantize=nf4", preset="flux-dev-lora", where=tmp_path)
    assert train(run) == 0, events(run)[-1]
    assert calls == ["FluxTransformer2DModel"] and (run.output / "hub.safetensors").is_file()
