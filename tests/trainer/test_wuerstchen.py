"""Würstchen v2's prior on a tiny model: the preset trains through `tuitrain new` + `tuitrain train` and learns; the
LoRA file (diffusers' prior. / text_encoder. names) maps every key back onto the model and diffusers' own loader
reproduces the trainer; LoKr and fine-tune outputs reproduce it too; prompts and latents are the pipeline's and
the original trainer's; a prior file loads offline with model.config; a SIGKILLed run resumes bit for bit.

The family's contract (folder and file loading, every method, stop/resume, the bench batch) is
tests/trainer/test_conformance.py's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from tests.trainer.conftest import denoising_loss, make_dataset
from tests.trainer.harness import assert_outputs_agree, assert_same_weights, events, new_run, train, workspace
from tests.trainer.resume import kill_mid_run, resume_matches
from tests.trainer.test_cascade import CLASS_IMAGES, _lycoris_delta, refused_alike
from tests.trainer.test_flux import CAPTION
from tuitrain.config import load_config, parse_config
from tuitrain.runs import RunDir
from tuitrain.trainer.families import get_adapter
from tuitrain.trainer.families.base import LatentBatch

SETS = ("data.resolution=64", "training.epochs=15", "training.learning_rate=5e-3", "training.lr_warmup_steps=0",
        "lora.rank=8", "lora.alpha=4", "lora.train_ff=true", "sampling.every_epochs=0", "saving.every_epochs=0",
        "training.gradient_checkpointing=false", "saving.dtype=fp32", "model.config=")


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tuitrain.trainer.tiny import save_tiny_model

    return save_tiny_model("wuerstchen", tmp_path_factory.mktemp("wuerstchen") / "model")


def _new(name: str, model: Path, data: Path, where: Path, *sets: str) -> RunDir:
    """`tuitrain new --preset wuerstchen2-lora --base MODEL --set ...`, made in this process."""
    return new_run(name, model, data, *SETS, *sets, preset="wuerstchen2-lora", where=where)


def _load(folder: Path) -> Any:
    """Plain diffusers, as a user loads the folder (the adapter module has put back diffusers' Würstchen names)."""
    from diffusers import DiffusionPipeline

    get_adapter("wuerstchen")
    return DiffusionPipeline.from_pretrained(str(folder), local_files_only=True)


@torch.no_grad()
def _output(pipe: Any, t: float = 0.6) -> torch.Tensor:
    """The prior's epsilon for fixed latents (seed 0), caption and time, through the family adapter."""
    adapter = get_adapter("wuerstchen")
    parts = adapter.parts(pipe, "auto")
    latents = torch.randn(1, 16, 8, 8, generator=torch.Generator().manual_seed(0))
    batch = LatentBatch(latents, adapter.encode_text(parts, [CAPTION]))
    return adapter.predict(parts, latents, torch.tensor([t]), batch)


def _trainers_model(run: RunDir, config: Any, model: Path) -> Any:
    """A pipeline whose prior (and text encoder) carry the run's adapter from its last backup: what the trainer
    computed."""
    from tuitrain.trainer import backup as backups
    from tuitrain.trainer.methods.lora import inject_lora, load_lora_state

    adapter = get_adapter("wuerstchen")
    pipe = _load(model)
    encoders = [pipe.text_encoder] if config.lora.train_text_encoder else []
    handles = inject_lora(pipe.prior, encoders, config.lora, unet_target_modules=list(adapter.attention_modules),
                          unet_ff_modules=list(adapter.feed_forward_modules), unet_conv_modules=[],
                          text_encoder_target_modules=list(adapter.text_encoder_modules), denoiser_name="prior")
    found = backups.latest_backup(run.checkpoints)
    assert found is not None and found.step == events(run, "finished")[-1]["step"]
    load_lora_state(handles, found.weights)
    return pipe


def _module_of(pipe: Any, key: str, suffixes: tuple[str, ...]) -> torch.nn.Module:
    """The module a file key adapts: `<component>.<module path>.<suffix>` (a KeyError names a key that fits none)."""
    suffix = next(s for s in suffixes if key.endswith("." + s))
    component, _, path = key[: -len(suffix) - 1].partition(".")
    if component == "text_encoder":
        from tuitrain.trainer.export.naming import clip_path

        modules = {clip_path(p): m for p, m in pipe.text_encoder.named_modules()}
    else:
        assert component == "prior", key
        modules = dict(pipe.prior.named_modules())
    return modules[path]


def test_the_preset_trains_through_the_cli_learns_and_diffusers_loads_the_lora(model: Path, tmp_path: Path,
                                                                                 cli) -> None:
    """`tuitrain new --preset wuerstchen2-lora` and `tuitrain train` as a user runs them: the eval loss at fixed noise
    falls; every key of the file is prior.<module>.lora_A/B of a Linear of the prior; WuerstchenPriorPipeline's own
    load_lora_weights reproduces what the trainer computed."""
    data = make_dataset(tmp_path / "data", count=2)
    sets = [a for s in SETS for a in ("--set", s)]
    made = cli("new", "w", "--preset", "wuerstchen2-lora", "--data", str(data), "--base", str(model), *sets,
               "--set", "training.epochs=40")
    assert made.returncode == 0, made.stderr
    trained = cli("train", "w")
    assert trained.returncode == 0, trained.stderr[-3000:]
    run = RunDir(workspace() / "w")
    config = load_config(run.config)
    assert config.model.family == "wuerstchen" and config.model.flavour == "v2"
    assert events(run, "started")[0]["family"] == "wuerstchen"

    path = run.output / "w.safetensors"
    with safe_open(path, "pt") as f:
        keys, meta = list(f.keys()), f.metadata()
    assert meta["modelspec.architecture"] == "wuerstchen-v2-prior/lora"
    pipe = _load(model)
    assert keys and all(k.startswith("prior.") for k in keys)
    for key in keys:  # every key onto the module it adapts, with the shape that module takes
        module = _module_of(pipe, key, ("lora_A.weight", "lora_B.weight"))
        assert isinstance(module, torch.nn.Linear), key
        shape = tuple(load_file(path)[key].shape)
        assert shape == ((8, module.in_features) if "lora_A" in key else (module.out_features, 8)), key
    adapted = {k.rsplit(".", 2)[0] for k in keys}
    assert any(k.endswith("attention.to_out.0") for k in adapted) and any(k.endswith("channelwise.4") for k in adapted)

    before = denoising_loss(_load(model), "wuerstchen", data)
    loaded = _load(model)
    loaded.load_lora_weights(str(path))  # diffusers' own loader: WuerstchenPriorPipeline has it
    after = denoising_loss(loaded, "wuerstchen", data)
    assert after < 0.9 * before, (before, after)
    print(f"eval loss at fixed noise: untrained {before:.4f}, trained {after:.4f}")

    base, theirs = _output(_load(model)), _output(_trainers_model(run, config, model))
    assert (theirs - base).abs().max() > 1e-2
    torch.testing.assert_close(_output(loaded), theirs, rtol=1e-4, atol=1e-5)


def test_a_text_encoder_lora_loads_in_diffusers_and_reproduces_the_trainer(model: Path, tmp_path: Path) -> None:
    """lora.train_text_encoder: the file holds text_encoder.<CLIP module> keys too, which the pipeline loads."""
    data = make_dataset(tmp_path / "data", count=2)
    run = _new("te", model, data, tmp_path, "training.epochs=3", "lora.train_text_encoder=true")
    config = load_config(run.config)
    assert train(run) == 0, events(run)[-1]
    path = run.output / "te.safetensors"
    keys = list(load_file(path))
    assert any(k.startswith("text_encoder.") for k in keys) and any(k.startswith("prior.") for k in keys)
    pipe = _load(model)
    for key in keys:
        assert isinstance(_module_of(pipe, key, ("lora_A.weight", "lora_B.weight")), torch.nn.Linear), key
    pipe.load_lora_weights(str(path))
    theirs = _output(_trainers_model(run, config, model))
    torch.testing.assert_close(_output(pipe), theirs, rtol=1e-4, atol=1e-5)


def test_a_lokr_file_reproduces_the_trainer(model: Path, tmp_path: Path) -> None:
    """LoKr under prior.<diffusers path> (the LoRA's names): merged into the base weights by the loaders' formula,
    it computes what the trainer's adapter computed."""
    data = make_dataset(tmp_path / "data", count=2)
    run = _new("k", model, data, tmp_path, "lora.type=lokr", "lora.lokr_factor=4", "training.epochs=2")
    config = load_config(run.config)
    assert train(run) == 0, events(run)[-1]
    state = load_file(run.output / "k.safetensors")
    assert state and all(k.startswith("prior.") for k in state)
    merged = _load(model)
    with torch.no_grad():
        for name in {k.rsplit(".", 1)[0] for k in state}:
            module = _module_of(merged, f"{name}.alpha", ("alpha",))
            module.weight += _lycoris_delta(state, name).reshape(module.weight.shape)
    trained = _output(_trainers_model(run, config, model))
    assert (trained - _output(_load(model))).abs().max() > 1e-3
    torch.testing.assert_close(_output(merged), trained, rtol=1e-4, atol=1e-5)


def test_prompt_encoding_and_prior_call_are_the_pipelines(model: Path) -> None:
    pipe = _load(model)
    assert type(pipe).__name__ == "WuerstchenPriorPipeline" and type(pipe.prior).__name__ == "WuerstchenPrior"
    adapter = get_adapter("wuerstchen")
    parts = adapter.parts(pipe, "auto")
    assert parts.flavour == "v2" and parts.prediction_type == "epsilon"
    mine = adapter.encode_text(parts, [CAPTION, "x"])
    with torch.no_grad():
        hidden, _ = pipe.encode_prompt(torch.device("cpu"), 1, False, prompt=[CAPTION, "x"])
        latents = torch.randn(2, 16, 8, 12, generator=torch.Generator().manual_seed(0))
        out = adapter.predict(parts, latents, torch.tensor([0.3, 0.7]), LatentBatch(latents, mine))
        theirs = pipe.prior(latents, r=torch.tensor([0.3, 0.7]), c=hidden)
    torch.testing.assert_close(mine["hidden"], hidden)
    torch.testing.assert_close(out, theirs)


def test_latents_are_the_v2_encoders_scaled_as_the_pipeline_unscales_them(model: Path) -> None:
    """(effnet + 1) / 42, the original trainer's encoder output and the inverse of the pipeline's `* 42 - 1`, at
    the pipeline's latent size (64 x 96 px with the tiny multiple 8: 8 x 12; 1024 px and 42.67: 24 x 24)."""
    from tuitrain.trainer.families.cascade.effnet import effnet_latents

    pipe = _load(model)
    adapter = get_adapter("wuerstchen")
    parts = adapter.parts(pipe, "auto")
    assert parts.vae.config.affine_norm
    pixels = torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        latents = adapter.encode_images(parts, pixels)
        raw = effnet_latents(parts.vae, pixels, (8, 12))
    assert tuple(latents.shape) == (2, 16, 8, 12)
    torch.testing.assert_close(latents, (raw + 1) / 42)
    torch.testing.assert_close(latents * pipe.config.latent_mean - pipe.config.latent_std, raw)
    assert 0.1 < raw.std().item() < 3 and latents.std().item() < 0.1
    parts.extra["resolution_multiple"] = 42.67
    assert adapter.latent_size(parts, 1024, 1024) == (24, 24)


def test_the_v2_encoder_is_cascades_with_an_affine_norm_and_each_is_told_apart(model: Path, tmp_path: Path) -> None:
    """The published architecture with Würstchen's affine batch norm: 20,198,000 parameters; a file of either
    encoder loads as itself, and Stable Cascade's given to Würstchen is refused in one line."""
    from tuitrain.trainer.families.cascade.effnet import EffNetConfig, EfficientNetEncoder, load_encoder
    from tuitrain.trainer.families.cascade.tiny import tiny_effnet as cascade_effnet
    from tuitrain.trainer.families.wuerstchen.tiny import tiny_effnet
    from tuitrain.trainer.errors import TrainingError

    with torch.device("meta"):
        full = EfficientNetEncoder(EffNetConfig(affine_norm=True))
    assert sum(p.numel() for p in full.parameters()) == 20_198_000
    assert {"mapper.1.weight", "mapper.1.bias", "mapper.1.running_var"} <= set(full.state_dict())

    encoder = tiny_effnet()
    loaded = load_encoder(encoder.save(tmp_path / "w"), "wuerstchen.effnet", "Würstchen v2's")
    assert loaded.config.affine_norm
    pixels = torch.rand(1, 3, 32, 32) * 2 - 1
    assert_same_weights(loaded, encoder)
    assert_outputs_agree(loaded(loaded.normalise(pixels)), encoder(encoder.normalise(pixels)))

    other = cascade_effnet().save(tmp_path / "c")
    adapter = get_adapter("wuerstchen")
    adapter.configure(parse_config({"model": {"family": "wuerstchen", "base": str(model)},
                                    "wuerstchen": {"effnet": str(other)}}))
    with pytest.raises(TrainingError, match=r"^wuerstchen\.effnet: '.*effnet_encoder\.safetensors' is Stable "
                                             r"Cascade's EfficientNet encoder"):
        adapter.parts(_load(model), "auto")


def test_a_finetune_saves_the_prior_file_which_loads_offline_as_the_trained_model(model: Path, tmp_path: Path) -> None:
    """The fine-tune's file is the prior in diffusers' names (the published prior file's layout); as model.base with
    model.config it loads offline to exactly the final diffusers folder's weights, which plain diffusers loads too;
    `tuitrain check` names it; a file short of a tensor is one line."""
    from tuitrain.trainer.loading import ModelLoadError, load_pipeline
    from tuitrain.trainer.loading.preflight import inspect_base

    data = make_dataset(tmp_path / "data", count=2)
    run = _new("f", model, data, tmp_path, "training.method=finetune", "training.epochs=2",
               "training.learning_rate=1e-3", "finetune.diffusers_folder=true")
    assert train(run) == 0, events(run)[-1]
    file = run.output / "f.safetensors"
    with safe_open(file, "pt") as f:
        keys = set(f.keys())
    assert "cond_mapper.0.weight" in keys and "blocks.2.attention.to_q.weight" in keys
    folder = _load(run.output / "f-diffusers")
    index = json.loads((run.output / "f-diffusers" / "model_index.json").read_text())
    assert index["prior"] == ["wuerstchen", "WuerstchenPrior"]  # as warp-ai's published folder names it

    cfg = parse_config({"model": {"family": "wuerstchen", "base": str(file), "config": str(model)}})
    assert "Würstchen" in inspect_base(cfg.model, "wuerstchen", tmp_path)
    from_file = load_pipeline(cfg.model, "wuerstchen", config_dir=tmp_path)
    assert type(from_file).__name__ == "WuerstchenPriorPipeline"
    mine, theirs = from_file.prior.state_dict(), folder.prior.state_dict()
    assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)
    assert not all(torch.equal(mine[k], v) for k, v in _load(model).prior.state_dict().items())

    state = load_file(file)
    del state["cond_mapper.2.bias"]
    save_file(state, str(tmp_path / "bad.safetensors"))
    cfg = parse_config({"model": {"family": "wuerstchen", "base": str(tmp_path / "bad.safetensors"),
                                  "config": str(model)}})
    with pytest.raises(ModelLoadError, match=r"^model\.base: '.*bad\.safetensors' does not fit the prior in .* the "
                                             r"file lacks 'cond_mapper\.2\.bias'"):
        load_pipeline(cfg.model, "wuerstchen", config_dir=tmp_path)


def test_the_shipped_config_builds_the_published_prior() -> None:
    """configs/wuerstchen2/prior/config.json (scripts/convert_wuerstchen.py's arguments): 993.6M parameters, CLIP-bigG
    wide conditioning, and the bench batch fits it (meta device)."""
    adapter = get_adapter("wuerstchen")
    with torch.device("meta"):
        prior = adapter.full_size_denoiser()
        batch = adapter.random_batch(prior, 1, 1024, torch.device("meta"), torch.float32)
    assert sum(p.numel() for p in prior.parameters()) == 993_636_896
    assert prior.config.c_cond == 1280 and prior.config.depth == 32 and prior.config.c == 1536
    assert tuple(batch.latents.shape) == (1, 16, 24, 24) and tuple(batch.conditioning["hidden"].shape) == (1, 77, 1280)


def test_a_run_killed_mid_way_resumes_bit_for_bit(model: Path, tmp_path: Path, cli) -> None:
    """SIGKILL a detached trainer (`tuitrain train --detach`), `tuitrain train` again: the uninterrupted run's file."""
    data = make_dataset(tmp_path / "data", count=4)
    # 12 steps: the kill comes at step 3-5, and the steps after it must outlast the kill's 20 ms polling (with
    # 6 steps the tiny prior finished and saved before the signal landed, once in a full CI run).
    common = ("training.epochs=6", "training.batch_size=2", "saving.backup_every_steps=2", "saving.backup_keep_last=2")
    straight = _new("straight", model, data, workspace(), *common)
    assert train(straight) == 0, events(straight)[-1]
    broken = _new("broken", model, data, workspace(), *common)
    last_step = kill_mid_run(cli, broken, (3, 5))  # after the first backup (step 2)
    resume_matches(broken, straight.output / "straight.safetensors", last_step, backup_every=2)


def test_samples_preview_the_latents_or_go_through_the_decoder(model: Path, tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    """Without wuerstchen.decoder a sample is the prior's latents (8 x 8 cells) and the log says so once; with a
    WuerstchenDecoderPipeline folder it is decoded by stages B and A (more colours than cells, no note)."""
    from PIL import Image

    from tuitrain.trainer.families.wuerstchen.adapter import NOTE
    from tuitrain.trainer.families.wuerstchen.tiny import save_tiny_decoder

    data = make_dataset(tmp_path / "data", count=2)
    sampling = ("training.epochs=1", "sampling.every_epochs=1", "sampling.steps=2", "sampling.cfg=4.0",
                "sampling.prompts=[{prompt = 'a red square', negative_prompt = 'blue'}]")
    run = _new("s", model, data, tmp_path, "sampling.before_training=true", *sampling)
    assert train(run) == 0, events(run)[-1]
    images = [Image.open(e["path"]).convert("RGB") for e in events(run, "sample")]
    assert len(images) == 2 and all(image.size == (64, 64) for image in images)
    assert len(set(images[0].get_flattened_data())) <= 64
    assert [r.getMessage() for r in caplog.records].count(NOTE) == 1

    caplog.clear()
    decoder = save_tiny_decoder(tmp_path / "decoder")
    run = _new("d", model, data, tmp_path, f"wuerstchen.decoder={decoder}", *sampling)
    assert train(run) == 0, events(run)[-1]
    image = Image.open(events(run, "sample")[0]["path"]).convert("RGB")
    assert image.size == (64, 64) and len(set(image.get_flattened_data())) > 64
    assert NOTE not in [r.getMessage() for r in caplog.records]


@pytest.mark.parametrize(("sets", "reason"), [
    (("wuerstchen.effnet=/nowhere/effnet.safetensors",),
     "wuerstchen.effnet: '/nowhere/effnet.safetensors' does not exist; the prior trains on EfficientNet latents: set "
     "it to Würstchen v2's encoder (model_v2_stage_b.pt's effnet_state_dict as .safetensors)"),
    (("wuerstchen.decoder=/nowhere/decoder",), "wuerstchen.decoder: '/nowhere/decoder' does not exist; give a "
                                               "Würstchen decoder diffusers folder (stages B and A) or a hub id"),
    (("data.concepts=[{path = 'DATA'}, {path = 'DATA/../class', role = 'regularisation', class_images = 2, "
      "caption = 'instance', instance_prompt = 'a square'}]",),
     "data.concepts[].class_images: Würstchen draws class images through its decoder; set wuerstchen.decoder "
     "(stages B and A) or set class_images to 0"),
])
def test_what_wuerstchen_cannot_do_is_refused_at_start_in_one_line(sets: tuple[str, ...], reason: str, model: Path,
                                                                    tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data", count=2)
    run = _new("t", model, data, tmp_path, *(s.replace("DATA", str(data)) for s in sets))
    assert train(run) == 1
    assert events(run, "finished")[-1]["reason"] == reason
    assert not events(run, "step")


@pytest.mark.parametrize(("setting", "code", "line"), [
    # The config itself is wrong (exit 2): every command reading it says so.
    ("model.quantize=int8", 2, "model.quantize: \"int8\" cannot run Würstchen's prior (bitsandbytes' int8 layers "
                               "take no 4-D input, which its res blocks give them); use nf4, int4 or fp8"),
    # A valid config the files keep from training (exit 1): check's verdict, which train obeys before torch loads.
    ("wuerstchen.effnet=/nowhere/effnet.safetensors", 1,
     "wuerstchen.effnet: '/nowhere/effnet.safetensors' does not exist; the prior trains on EfficientNet latents: set "
     "it to Würstchen v2's encoder (model_v2_stage_b.pt's effnet_state_dict as .safetensors)"),
    ("wuerstchen.decoder=/nowhere/decoder", 1, "wuerstchen.decoder: '/nowhere/decoder' does not exist; give a "
                                               "Würstchen decoder diffusers folder (stages B and A) or a hub id"),
    (CLASS_IMAGES, 1, "data.concepts[].class_images: Würstchen draws class images through its decoder; set "
                      "wuerstchen.decoder (stages B and A) or set class_images to 0"),
])
def test_check_refuses_what_train_refuses_in_the_same_line(setting: str, code: int, line: str, model: Path,
                                                           tmp_path: Path, cli) -> None:
    """`tuitrain check` blocks what `tuitrain train` refuses, in the same line (found in review: check passed an
    int8 run that train refused at start); the encoder and decoder through the helper Stable Cascade shares."""
    refused_alike(cli, "wuerstchen", model, make_dataset(tmp_path / "data", count=2), tmp_path, setting, code, line)


def test_ema_reaches_wuerstchen_runs(model: Path, tmp_path: Path) -> None:
    """An EMA never updated saves the initial adapter: the file's lora_B stays zero, where the plain run's does not."""
    data = make_dataset(tmp_path / "data", count=2)
    run = _new("m", model, data, tmp_path, "training.epochs=2", "ema.mode=cpu", "ema.update_every=10000")
    assert train(run) == 0, events(run)[-1]
    ups = [v for k, v in load_file(run.output / "m.safetensors").items() if k.endswith("lora_B.weight")]
    assert ups and all(torch.count_nonzero(v) == 0 for v in ups)


def test_a_quantized_prior_trains_and_samples(model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """model.quantize = nf4 (bitsandbytes) puts the prior's linear layers in 4 bits (the tiny ones too, with the
    size threshold lowered) and the run trains and draws its sample through them."""
    from tuitrain.trainer import quantize
    from tuitrain.trainer.loading import quantized

    swapped: list[tuple[str, int]] = []
    real = quantized.load_quantized

    def spy(*args: Any) -> Any:  # the folder's prior is quantized as it loads
        loaded = real(*args)
        swapped.append((type(loaded).__name__, sum(type(m).__name__ == "Linear4bit" for m in loaded.modules())))
        return loaded

    monkeypatch.setattr(quantize, "MIN_WEIGHTS", 512)
    monkeypatch.setattr(quantized, "load_quantized", spy)
    data = make_dataset(tmp_path / "data", count=2)
    run = _new("q", model, data, tmp_path, "training.epochs=1", "model.quantize=nf4", "sampling.every_epochs=1",
               "sampling.steps=2", "sampling.prompts=[{prompt = 'a red square'}]")
    assert train(run) == 0, events(run)[-1]
    assert [name for name, count in swapped if count] == ["WuerstchenPrior"]
    assert len(events(run, "sample")) == 1 and events(run, "step")
    assert load_file(run.output / "q.safetensors")


def test_tuitrain_sample_draws_the_lora_file_through_diffusers_loader(model: Path, tmp_path: Path) -> None:
    """`tuitrain sample`'s renderer loads the file with the pipeline's load_lora_weights at peft scales: strength 0
    draws the base model's image, 1 another."""
    import numpy as np
    from PIL import Image

    from tuitrain.trainer.resample import Renderer, prompts_for, render_sweep

    data = make_dataset(tmp_path / "data", count=2)
    run = _new("r", model, data, tmp_path, "training.epochs=3", "training.learning_rate=1e-2", "sampling.steps=2",
               "sampling.prompts=[{prompt = 'a red square'}]")
    assert train(run) == 0, events(run)[-1]
    config = load_config(run.config)
    prompts = prompts_for(config, run, [], [])
    base = np.asarray(Renderer(run, config).draw(prompts[0], None).convert("RGB"))
    written = render_sweep(run, config, run.output / "r.safetensors", 4, [0.0, 1.0], prompts)
    drawn = [np.asarray(Image.open(path).convert("RGB")) for path in written]
    assert np.array_equal(drawn[0], base) and not np.array_equal(drawn[1], base)
