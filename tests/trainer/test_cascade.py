"""Stable Cascade stage C on tiny models: each flavour's preset trains through `tuitrain new` + train and learns; the
LoRA file (ComfyUI's lora_prior_unet_ names) maps every key back onto the prior and reproduces the trainer; LoKr
and fine-tune outputs reproduce it too; the prompt encoding is the pipeline's; the EfficientNet encoder has the
published layout; original-layout prior files convert both ways; a run killed mid-way resumes bit for bit.

The family's contract (folder and file loading, every method, stop/resume, the bench batch) is
tests/trainer/test_conformance.py's.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from tests.trainer.conftest import denoising_loss, make_dataset
from tests.trainer.harness import assert_outputs_agree, assert_same_weights, events, new_run, train, workspace
from tests.trainer.resume import crash_mid_run, resume_matches
from tests.trainer.test_flux import CAPTION
from tuitrain.config import load_config, parse_config
from tuitrain.trainer.families import get_adapter
from tuitrain.trainer.families.base import LatentBatch

PRESETS = {"stage-c": "cascade-lora", "stage-c-lite": "cascade-lite-lora"}
SETS = ("data.resolution=64", "training.epochs=15", "training.learning_rate=5e-3", "training.lr_warmup_steps=0",
        "lora.rank=8", "lora.alpha=4", "lora.train_ff=true", "sampling.every_epochs=0", "saving.every_epochs=0",
        "training.gradient_checkpointing=false", "saving.dtype=fp32")


@pytest.fixture(scope="module")
def cascade_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tuitrain.trainer.tiny import save_tiny_model

    return save_tiny_model("cascade", tmp_path_factory.mktemp("cascade") / "model")


def _new(name: str, model: Path, data: Path, where: Path, *sets: str, flavour: str = "stage-c") -> Any:
    """`tuitrain new --preset cascade(-lite)-lora --base MODEL` (the tiny model stands for either flavour)."""
    return new_run(name, model, data, *SETS, *sets, f"model.flavour={flavour}", "model.config=", preset=PRESETS[flavour],
                   where=where)


def _load(model: Path) -> Any:
    from diffusers import DiffusionPipeline

    return DiffusionPipeline.from_pretrained(str(model), local_files_only=True)


@torch.no_grad()
def _output(pipe: Any, t: float = 0.6) -> torch.Tensor:
    """The prior's epsilon for fixed latents (seed 0), caption and time, through the family adapter."""
    adapter = get_adapter("cascade")
    parts = adapter.parts(pipe, "auto")
    latents = torch.randn(1, 16, 8, 8, generator=torch.Generator().manual_seed(0))
    batch = LatentBatch(latents, adapter.encode_text(parts, [CAPTION]))
    return adapter.predict(parts, latents, torch.tensor([t]), batch)


def _eval_loss(pipe: Any, config: Any, data: Path, rounds: int = 6) -> float:
    return denoising_loss(pipe, "cascade", data, CAPTION, rounds, config)


def _trainers_prior(run: Any, config: Any, model: Path) -> Any:
    """A pipeline whose prior carries the run's adapter from its last backup: what the trainer computed."""
    from tuitrain.trainer import backup as backups
    from tuitrain.trainer.methods.lora import inject_lora, load_lora_state

    adapter = get_adapter("cascade")
    pipe = _load(model)
    handles = inject_lora(pipe.prior, [], config.lora, unet_target_modules=list(adapter.attention_modules),
                          unet_ff_modules=list(adapter.feed_forward_modules), unet_conv_modules=[],
                          text_encoder_target_modules=[], denoiser_name="prior")
    found = backups.latest_backup(run.checkpoints)
    assert found is not None and found.step == events(run, "finished")[-1]["step"]
    load_lora_state(handles, found.weights)
    return pipe


def test_prompt_encoding_and_prior_call_are_the_pipelines(cascade_model: Path) -> None:
    pipe = _load(cascade_model)
    assert type(pipe).__name__ == "StableCascadePriorPipeline"
    adapter = get_adapter("cascade")
    parts = adapter.parts(pipe, "auto")
    assert parts.flavour == "stage-c" and parts.prediction_type == "epsilon"
    mine = adapter.encode_text(parts, [CAPTION, "x"])
    with torch.no_grad():
        hidden, pooled, _, _ = pipe.encode_prompt(torch.device("cpu"), 2, 1, False, prompt=[CAPTION, "x"])
    torch.testing.assert_close(mine["hidden"], hidden)
    torch.testing.assert_close(mine["pooled"], pooled[:, 0])
    # The pipeline's call: a zero image embedding of clip_image_in_channels, the time as timestep_ratio.
    latents = torch.randn(2, 16, 8, 12, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = adapter.predict(parts, latents, torch.tensor([0.3, 0.7]), LatentBatch(latents, mine))
        theirs = pipe.prior(sample=latents, timestep_ratio=torch.tensor([0.3, 0.7]), clip_text_pooled=pooled,
                            clip_text=hidden, clip_img=torch.zeros(2, 1, pipe.prior.config.clip_image_in_channels),
                            return_dict=False)[0]
    torch.testing.assert_close(out, theirs)


def test_the_objective_is_diffusers_continuous_epsilon(cascade_model: Path) -> None:
    """t ~ U[0, 1) (objective.min/max_timestep in thousandths), x_t by DDPMWuerstchenScheduler.add_noise, target n."""
    from diffusers import DDPMWuerstchenScheduler

    from tuitrain.trainer.errors import TrainingError
    from tuitrain.trainer.objectives import ObjectiveSettings, build_objective
    from tuitrain.trainer.objectives.continuous import ContinuousDDPMObjective

    config = dict(_load(cascade_model).scheduler.config)
    objective = build_objective("ddpm", config, ObjectiveSettings(min_timestep=200, max_timestep=400))
    assert isinstance(objective, ContinuousDDPMObjective)
    latents = torch.randn(64, 16, 2, 2, generator=torch.Generator().manual_seed(1))
    noised = objective.noise(latents, torch.Generator().manual_seed(2))
    assert noised.timesteps.min() >= 0.2 and noised.timesteps.max() < 0.4
    expected = DDPMWuerstchenScheduler().add_noise(latents, noised.target, noised.timesteps)
    torch.testing.assert_close(noised.noisy, expected)
    a = torch.cos((noised.timesteps + 0.008) / 1.008 * math.pi / 2) ** 2 / math.cos(0.008 / 1.008 * math.pi / 2) ** 2
    torch.testing.assert_close(noised.noisy, a.sqrt().view(-1, 1, 1, 1) * latents
                               + (1 - a).sqrt().view(-1, 1, 1, 1) * noised.target)
    # min-SNR-gamma as for discrete epsilon models: min(SNR, gamma) / SNR with SNR(t) = a / (1 - a).
    weighted = build_objective("ddpm", config, ObjectiveSettings(), min_snr_gamma=5.0)
    snr = a / (1 - a)
    torch.testing.assert_close(weighted.loss_weights(noised), torch.clamp(snr, max=5.0) / snr)
    assert weighted.loss_weights(noised).min() < 1  # t in [0.2, 0.4): SNR above 5 for some
    with pytest.raises(TrainingError, match=r"^model\.prediction: this model predicts epsilon"):
        build_objective("ddpm", config, prediction="v_prediction")


@pytest.mark.parametrize("flavour", list(PRESETS))
def test_each_flavour_trains_from_its_preset_learns_and_the_lora_reproduces_the_trainer(
        flavour: str, cascade_model: Path, tmp_path: Path) -> None:
    from tuitrain.trainer.families.cascade.lora import load_lora_weights

    data = make_dataset(tmp_path / "data", count=2)
    run = _new("c", cascade_model, data, tmp_path, flavour=flavour)
    config = load_config(run.config)
    assert config.model.family == "cascade" and config.model.flavour == flavour
    assert train(run) == 0, events(run)[-1]
    assert events(run, "started")[0]["family"] == "cascade"

    path = run.output / "c.safetensors"
    with safe_open(path, "pt") as f:
        keys, meta = list(f.keys()), f.metadata()
    assert keys and all(k.startswith("lora_prior_unet_") and k.endswith((".lora_down.weight", ".lora_up.weight",
                                                                          ".alpha")) for k in keys)
    # ComfyUI's module names: attention under attention.attn, the output projection as out_proj.
    assert any("_attention_attn_to_k." in k for k in keys) and any("_attention_attn_out_proj." in k for k in keys)
    assert any("_channelwise_4." in k for k in keys)
    assert all(load_file(path)[k].item() == 4.0 for k in keys if k.endswith(".alpha"))
    assert meta["modelspec.architecture"] == f"{_arch(flavour)}/lora"

    before = _eval_loss(_load(cascade_model), config, data)
    loaded = _load(cascade_model)
    load_lora_weights(loaded, path)  # every key onto its module, or an error
    after = _eval_loss(loaded, config, data)
    assert after < 0.9 * before, (before, after)

    base, trained = _output(_load(cascade_model)), _output(_trainers_prior(run, config, cascade_model))
    assert (trained - base).abs().max() > 1e-2
    torch.testing.assert_close(_output(loaded), trained, rtol=1e-4, atol=1e-5)


def _arch(flavour: str) -> str:
    return {"stage-c": "stable-cascade-v1-prior", "stage-c-lite": "stable-cascade-v1-prior-lite"}[flavour]


def test_lora_names_map_onto_the_full_size_prior_as_comfyui_names_it() -> None:
    """On the public architecture (meta device): every adaptable module has one lora_prior_unet_ name, the
    attention ones in ComfyUI's form (a community LoRA's key among them), and every name maps back."""
    from tuitrain.trainer.families.cascade.lora import kohya_module_name, module_names

    with torch.device("meta"):
        prior = get_adapter("cascade").full_size_denoiser()
    names = module_names(prior)
    assert "lora_prior_unet_down_blocks_0_11_attention_attn_to_q" in names  # as community Cascade LoRAs name it
    assert names["lora_prior_unet_up_blocks_1_2_attention_attn_out_proj"] == "up_blocks.1.2.attention.to_out.0"
    modules = dict(prior.named_modules())
    for name, path in names.items():
        assert kohya_module_name(path) == name and path in modules


def test_a_file_key_that_fits_no_module_is_an_error_not_skipped(cascade_model: Path, tmp_path: Path) -> None:
    from tuitrain.trainer.families.cascade.lora import load_lora_weights

    file = tmp_path / "bad.safetensors"
    save_file({"lora_prior_unet_down_blocks_9_0_channelwise_0.lora_down.weight": torch.zeros(2, 32),
               "lora_prior_unet_down_blocks_9_0_channelwise_0.lora_up.weight": torch.zeros(32, 2)}, str(file))
    with pytest.raises(ValueError, match="names no module of this Stable Cascade prior"):
        load_lora_weights(_load(cascade_model), file)


def _lycoris_delta(state: dict[str, torch.Tensor], name: str) -> torch.Tensor:
    """ΔW of one LoKr module as LyCORIS's loaders rebuild it: kron(w1, w2) x alpha / r (scale 1 when both factors
    are whole; export/lycoris.py)."""
    w1 = state.get(f"{name}.lokr_w1")
    if w1 is None:
        w1 = state[f"{name}.lokr_w1_a"] @ state[f"{name}.lokr_w1_b"]
    w2 = state.get(f"{name}.lokr_w2")
    rank = None
    if w2 is None:
        w2, rank = state[f"{name}.lokr_w2_a"] @ state[f"{name}.lokr_w2_b"], state[f"{name}.lokr_w2_b"].shape[0]
    scale = 1.0 if rank is None else float(state[f"{name}.alpha"]) / rank
    return torch.kron(w1.float(), w2.float()) * scale


def test_a_lokr_file_reproduces_the_trainer(cascade_model: Path, tmp_path: Path) -> None:
    """LoKr under lora_prior_unet_<ComfyUI module path> (attention as attention_attn_to_q / out_proj, as the LoRA's):
    merged into the base weights by the loaders' formula, it computes what the trainer's adapter computed."""
    from tuitrain.trainer.families.cascade.layout import comfy_module

    data = make_dataset(tmp_path / "data", count=2)
    run = _new("k", cascade_model, data, tmp_path, "lora.type=lokr", "lora.lokr_factor=4", "training.epochs=2")
    config = load_config(run.config)
    assert train(run) == 0, events(run)[-1]
    state = load_file(run.output / "k.safetensors")
    assert state and all(k.startswith("lora_prior_unet_") for k in state)

    merged = _load(cascade_model)
    assert any("_attention_attn_to_q." in k for k in state) and not any("_attention_to_q." in k for k in state)
    by_name = {"lora_prior_unet_" + comfy_module(path).replace(".", "_"): m for path, m in merged.prior.named_modules()}
    with torch.no_grad():
        for name in {k.rsplit(".", 1)[0] for k in state}:
            module = by_name[name]
            module.weight += _lycoris_delta(state, name).reshape(module.weight.shape)
    trained = _output(_trainers_prior(run, config, cascade_model))
    assert (trained - _output(_load(cascade_model))).abs().max() > 1e-3
    torch.testing.assert_close(_output(merged), trained, rtol=1e-4, atol=1e-5)


def test_a_finetune_saves_the_original_layout_which_loads_back_as_the_trained_model(cascade_model: Path,
                                                                                    tmp_path: Path) -> None:
    """The fine-tune's file is the prior in the original names (attention q/k/v fused into in_proj); as model.base
    (the rest from model.config) it loads to exactly the weights of the final diffusers folder."""
    from tuitrain.trainer.loading import load_pipeline

    data = make_dataset(tmp_path / "data", count=2)
    run = _new("f", cascade_model, data, tmp_path, "training.method=finetune", "training.epochs=2",
               "training.learning_rate=1e-3", "finetune.diffusers_folder=true")
    assert train(run) == 0, events(run)[-1]
    file = run.output / "f.safetensors"
    with safe_open(file, "pt") as f:
        keys = set(f.keys())
    assert "down_blocks.0.2.attention.attn.in_proj_weight" in keys and "clip_txt_mapper.weight" in keys
    assert not any(".to_q." in k for k in keys)
    folder = _load(run.output / "f-diffusers")

    cfg = parse_config({"model": {"family": "cascade", "base": str(file), "config": str(cascade_model)}})
    from_file = load_pipeline(cfg.model, "cascade", config_dir=tmp_path)
    assert type(from_file).__name__ == "StableCascadePriorPipeline"
    mine, theirs = from_file.prior.state_dict(), folder.prior.state_dict()
    assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)
    assert not all(torch.equal(mine[k], v) for k, v in _load(cascade_model).prior.state_dict().items())


def test_an_original_prior_file_converts_both_ways(cascade_model: Path, tmp_path: Path) -> None:
    """A tiny prior in the original layout, bare or under ComfyUI's prefix, loads back through model.base to the
    same outputs; `tuitrain check` knows it; a file that lacks a tensor is one line."""
    from tuitrain.trainer.families.cascade.layout import from_original, to_original
    from tuitrain.trainer.loading import ModelLoadError, load_pipeline
    from tuitrain.trainer.loading.preflight import inspect_base

    pipe = _load(cascade_model)
    original = to_original(pipe.prior.state_dict())
    assert from_original(original).keys() == pipe.prior.state_dict().keys()
    expected = _output(pipe)
    for prefix in ("", "model.diffusion_model."):
        file = tmp_path / f"c{prefix[:5]}.safetensors"
        save_file({prefix + k: v.contiguous() for k, v in original.items()}, str(file))
        cfg = parse_config({"model": {"family": "cascade", "base": str(file), "config": str(cascade_model)}})
        assert "Stable Cascade" in inspect_base(cfg.model, "cascade", tmp_path)
        loaded = load_pipeline(cfg.model, "cascade", config_dir=tmp_path)
        assert_same_weights(loaded.prior, pipe.prior)
        assert_outputs_agree(_output(loaded), expected)
    del original["clip_txt_pooled_mapper.weight"]
    save_file({k: v.contiguous() for k, v in original.items()}, str(tmp_path / "bad.safetensors"))
    cfg = parse_config({"model": {"family": "cascade", "base": str(tmp_path / "bad.safetensors"),
                                  "config": str(cascade_model)}})
    with pytest.raises(ModelLoadError, match=r"^model\.base: '.*bad\.safetensors' does not fit the prior in .* the "
                                             r"file lacks 'clip_txt_pooled_mapper\.weight'"):
        load_pipeline(cfg.model, "cascade", config_dir=tmp_path)


def test_a_lite_file_takes_the_lite_architecture_whatever_the_folders(cascade_model: Path) -> None:
    """stable-cascade-prior's folder describes the full prior; its stage_c_lite file (1536 wide) takes the shipped
    lite config, which builds the 1.03B prior."""
    from diffusers import StableCascadeUNet

    from tuitrain.trainer.families.cascade.loading import prior_config

    lite = prior_config(cascade_model, {"clip_txt_mapper.weight": torch.zeros(1536, 1280)})
    assert lite["conditioning_dim"] == 1536 and lite["down_num_layers_per_block"] == [4, 12]
    with torch.device("meta"):
        count = sum(p.numel() for p in StableCascadeUNet.from_config(lite).parameters())
    assert abs(count - 1.031e9) / 1.031e9 < 0.01
    assert prior_config(cascade_model, {})["conditioning_dim"] == 32  # no marker: the folder's own


def test_the_effnet_encoder_has_the_published_layout() -> None:
    """EfficientNetV2-S features as torchvision names them under backbone., the 1x1 projection and its affine-free
    batch norm under mapper.: the published encoder's 20,197,968 parameters, sides / 32."""
    from tuitrain.trainer.families.cascade.effnet import EfficientNetEncoder

    with torch.device("meta"):
        encoder = EfficientNetEncoder()
        out = encoder(torch.zeros(1, 3, 768, 768))
    assert sum(p.numel() for p in encoder.parameters()) == 20_197_968
    assert tuple(out.shape) == (1, 16, 24, 24)
    shapes = {k: tuple(v.shape) for k, v in encoder.state_dict().items()}
    assert shapes["backbone.0.0.weight"] == (24, 3, 3, 3)
    assert shapes["backbone.1.1.block.0.0.weight"] == (24, 24, 3, 3)  # fused, expand 1
    assert shapes["backbone.2.0.block.1.0.weight"] == (48, 96, 1, 1)  # fused expand 4, then project
    assert shapes["backbone.4.0.block.2.fc1.weight"] == (16, 256, 1, 1)  # squeeze: input // 4
    assert shapes["backbone.6.14.block.1.0.weight"] == (1536, 1, 3, 3)  # depthwise, the 15th block of stage 6
    assert shapes["backbone.7.0.weight"] == (1280, 256, 1, 1)
    assert shapes["mapper.0.weight"] == (16, 1280, 1, 1) and "mapper.1.weight" not in shapes
    assert len([k for k in shapes if k.startswith("backbone.6.")]) == 15 * 22  # 15 MBConv blocks: 3 conv + batch norm (6 each), squeeze-excite 4


def test_effnet_round_trips_and_a_wrong_file_is_one_line(tmp_path: Path) -> None:
    from tuitrain.trainer.families.cascade.effnet import load_encoder
    from tuitrain.trainer.families.cascade.tiny import tiny_effnet

    encoder = tiny_effnet()
    path = encoder.save(tmp_path / "effnet")
    loaded = load_encoder(path)
    pixels = torch.rand(1, 3, 32, 32) * 2 - 1
    assert_same_weights(loaded, encoder)
    assert_outputs_agree(loaded(loaded.normalise(pixels)), encoder(encoder.normalise(pixels)))
    save_file({"backbone.0.0.weight": torch.zeros(8, 3, 3, 3)}, str(tmp_path / "effnet" / "other.safetensors"))
    with pytest.raises(ValueError, match=r"^cascade\.effnet: '.*other\.safetensors' is not Stable Cascade's "
                                         r"EfficientNet encoder: it lacks 'backbone\.0\.1\.bias'"):
        load_encoder(tmp_path / "effnet" / "other.safetensors")


def test_training_latents_are_the_encoders_at_the_pipelines_latent_size(cascade_model: Path) -> None:
    """64 x 96 pixels with the tiny multiple 8 make 8 x 12 latents (1024 px and 42.67 make 24 x 24), of about unit
    spread (the encoder's batch norm)."""
    adapter = get_adapter("cascade")
    parts = adapter.parts(_load(cascade_model), "auto")
    latents = adapter.encode_images(parts, torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(0)) * 2 - 1)
    assert tuple(latents.shape) == (2, 16, 8, 12)
    assert adapter.latent_size(parts, 1024, 1024) == (8 * 16, 8 * 16)
    parts.extra["resolution_multiple"] = 42.67
    assert adapter.latent_size(parts, 1024, 1024) == (24, 24)
    assert 0.1 < latents.std().item() < 3


def test_a_run_killed_mid_way_resumes_bit_for_bit(cascade_model: Path, tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data", count=4)
    common = ("training.epochs=3", "training.batch_size=2", "saving.backup_every_steps=2", "saving.backup_keep_last=2")
    straight = _new("straight", cascade_model, data, tmp_path, *common, flavour="stage-c-lite")
    assert train(straight) == 0, events(straight)[-1]
    broken = _new("broken", cascade_model, data, tmp_path, *common, flavour="stage-c-lite")
    last_step = crash_mid_run(broken, (3, 5))  # after the first backup (step 2)
    resume_matches(broken, straight.output / "straight.safetensors", last_step, backup_every=2, in_process=True)


def test_samples_preview_the_priors_latents_and_say_so(cascade_model: Path, tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    from PIL import Image

    from tuitrain.trainer.families.cascade.preview import NOTE

    data = make_dataset(tmp_path / "data", count=2)
    sampling = ("sampling.before_training=true", "sampling.every_epochs=1", "sampling.steps=2", "sampling.cfg=4.0",
                "sampling.prompts=[{prompt = 'a red square', negative_prompt = 'blue'}]")
    run = _new("s", cascade_model, data, tmp_path, "training.epochs=1", *sampling)
    assert train(run) == 0, events(run)[-1]
    drawn = events(run, "sample")
    assert len(drawn) == 2
    images = [Image.open(e["path"]) for e in drawn]
    assert all(image.size == (64, 64) for image in images)
    assert len(set(images[0].convert("RGB").get_flattened_data())) <= 64  # 8 x 8 latent cells, nearest-neighbour
    assert [r.getMessage() for r in caplog.records].count(NOTE) == 1  # said once, in the trainer's log


def test_samples_are_decoded_by_stages_b_and_a_when_cascade_decoder_names_them(cascade_model: Path, tmp_path: Path,
                                                                                caplog: pytest.LogCaptureFixture) -> None:
    """With cascade.decoder (a StableCascadeDecoderPipeline folder) the prior's latents go through stages B and A:
    images of the prompt's size with more colours than the 8 x 8 latent cells, and no preview note."""
    from PIL import Image

    from tuitrain.trainer.families.cascade.preview import NOTE
    from tuitrain.trainer.families.cascade.tiny import save_tiny_decoder

    decoder = save_tiny_decoder(tmp_path / "decoder")
    data = make_dataset(tmp_path / "data", count=2)
    sampling = ("sampling.every_epochs=1", "sampling.steps=2", "sampling.cfg=4.0",
                "sampling.prompts=[{prompt = 'a red square', negative_prompt = 'blue'}]")
    run = _new("d", cascade_model, data, tmp_path, "training.epochs=1", f"cascade.decoder={decoder}", *sampling)
    assert train(run) == 0, events(run)[-1]
    drawn = events(run, "sample")
    assert len(drawn) == 1
    image = Image.open(drawn[0]["path"]).convert("RGB")
    assert image.size == (64, 64) and len(set(image.get_flattened_data())) > 64
    assert NOTE not in [r.getMessage() for r in caplog.records]


def test_the_previewer_has_the_released_layout_and_draws_samples_without_a_decoder(cascade_model: Path,
                                                                                    tmp_path: Path,
                                                                                    caplog: pytest.LogCaptureFixture
                                                                                    ) -> None:
    """The previewer (modules/previewer.py's layout: 16 -> 512 channels, 8x up) on the meta device; a narrow one saved
    as previewer.safetensors draws the samples (its rough RGB, more than the 8 x 8 latent cells) and says so."""
    from PIL import Image

    from tuitrain.trainer.families.cascade.preview import PREVIEWER_NOTE
    from tuitrain.trainer.families.cascade.previewer import Previewer

    with torch.device("meta"):
        full = Previewer()
        assert tuple(full(torch.zeros(1, 16, 24, 24)).shape) == (1, 3, 192, 192)
    shapes = {k: tuple(v.shape) for k, v in full.state_dict().items()}
    assert shapes["blocks.0.weight"] == (512, 16, 1, 1) and shapes["blocks.6.weight"] == (512, 256, 2, 2)
    assert shapes["blocks.24.weight"] == (3, 128, 1, 1) and "blocks.23.running_var" in shapes

    torch.manual_seed(0)
    small = Previewer(c_hidden=16)
    (tmp_path / "prev").mkdir()
    save_file({k: v.contiguous() for k, v in small.state_dict().items()}, str(tmp_path / "prev" / "previewer.safetensors"))
    data = make_dataset(tmp_path / "data", count=2)
    run = _new("p", cascade_model, data, tmp_path, "training.epochs=1", "sampling.every_epochs=1", "sampling.steps=2",
               f"cascade.previewer={tmp_path / 'prev' / 'previewer.safetensors'}",
               "sampling.prompts=[{prompt = 'a red square'}]")
    assert train(run) == 0, events(run)[-1]
    image = Image.open(events(run, "sample")[0]["path"]).convert("RGB")
    assert image.size == (64, 64)
    # Not the latent preview, whose 8 x 8 pixel cells are each one colour: the previewer's transposed convolutions
    # and 3x3 convolutions vary within a cell.
    cells = [set(image.crop((x, y, x + 8, y + 8)).get_flattened_data()) for x in range(0, 64, 8) for y in range(0, 64, 8)]
    assert sum(len(c) > 1 for c in cells) > 8
    assert [r.getMessage() for r in caplog.records].count(PREVIEWER_NOTE) == 1


def test_an_effnet_file_that_is_not_the_encoder_is_one_line(cascade_model: Path, tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data", count=2)
    other = tmp_path / "other.safetensors"
    save_file({"mapper.0.weight": torch.zeros(16, 1280, 1, 1)}, str(other))
    run = _new("e", cascade_model, data, tmp_path, f"cascade.effnet={other}")
    assert train(run) == 1
    assert events(run, "finished")[-1]["reason"] == (
        f"cascade.effnet: '{other}' is not Stable Cascade's EfficientNet encoder: it lacks 'backbone.0.0.weight' "
        "(783 missing, 0 of another shape)")


@pytest.mark.parametrize(("sets", "reason"), [
    (("cascade.previewer=/nowhere/previewer.safetensors",),
     "cascade.previewer: '/nowhere/previewer.safetensors' does not exist; give Stable Cascade's previewer.safetensors "
     "or leave it empty"),
    (("cascade.decoder=/nowhere/decoder",), "cascade.decoder: '/nowhere/decoder' does not exist; give a Stable Cascade "
                                            "decoder diffusers folder (stages B and A) or a hub id"),
    (("cascade.effnet=/nowhere/effnet_encoder.safetensors",),
     "cascade.effnet: '/nowhere/effnet_encoder.safetensors' does not exist; stage C trains on EfficientNet latents: "
     "set it to Stable Cascade's effnet_encoder.safetensors"),
    (("data.concepts=[{path = 'DATA'}, {path = 'DATA/../class', role = 'regularisation', class_images = 2, "
      "caption = 'instance', instance_prompt = 'a square'}]",),
     "data.concepts[].class_images: Stable Cascade draws class images through its decoder; set cascade.decoder "
     "(stages B and A) or set class_images to 0"),
])
def test_what_cascade_cannot_do_is_refused_at_start_in_one_line(sets: tuple[str, ...], reason: str,
                                                                 cascade_model: Path, tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data", count=2)
    run = _new("t", cascade_model, data, tmp_path, *(s.replace("DATA", str(data)) for s in sets))
    assert train(run) == 1
    assert events(run, "finished")[-1]["reason"] == reason
    assert not events(run, "step")


def refused_alike(cli, family: str, model: Path, data: Path, where: Path, setting: str, code: int, line: str) -> None:
    """`tuitrain check CONFIG --set SETTING` blocks with `line` (the key first), exit `code` (2: the config itself
    is wrong; 1: valid, but the run cannot train), and `tuitrain train` refuses the same config with the same
    one line before making a run; without the setting, check passes."""
    config = where / f"{family}.toml"
    config.write_text(f'[model]\nfamily = "{family}"\nbase = "{model}"\n\n[data]\nresolution = 64\n\n'
                      f'[[data.concepts]]\npath = "{data}"\n')
    passed = cli("check", str(config))
    assert passed.returncode == 0, passed.stdout[-2000:] + passed.stderr
    shown = f"{config}: {line}" if code == 2 else f"cannot train: {line}"
    checked = cli("check", str(config), "--set", setting.replace("DATA", str(data)))
    assert checked.returncode == code
    assert shown in (checked.stderr if code == 2 else checked.stdout).splitlines()
    trained = cli("train", str(config), "--set", setting.replace("DATA", str(data)))
    assert (trained.returncode, trained.stderr.splitlines()) == (code, [shown])
    assert not workspace().exists() or not any(workspace().iterdir())  # refused before a run folder was made


CLASS_IMAGES = ("data.concepts=[{path = 'DATA'}, {path = 'DATA/../class', role = 'regularisation', class_images = 2, "
                "caption = 'instance', instance_prompt = 'a square'}]")


@pytest.mark.parametrize(("setting", "code", "line"), [
    ("lora.train_text_encoder=true", 2, "lora.train_text_encoder: Stable Cascade LoRA files hold the prior only "
                                        "(ComfyUI's lora_prior_unet_ names); set it to false"),
    ("saving.diffusers_format=true", 2, "saving.diffusers_format: diffusers has no Stable Cascade LoRA loader or "
                                        "writer; the saved .safetensors is in ComfyUI's lora_prior_unet_ names: turn "
                                        "it off"),
    ("model.quantize=nf4", 2, "model.quantize: \"nf4\": Stable Cascade's prior pipeline cannot sample a quantized "
                              "prior; set model.quantize = 'none' (the 3.6B prior is 7.2 GB in bf16)"),
    ("cascade.effnet=/nowhere/effnet_encoder.safetensors", 1,
     "cascade.effnet: '/nowhere/effnet_encoder.safetensors' does not exist; stage C trains on EfficientNet latents: "
     "set it to Stable Cascade's effnet_encoder.safetensors"),
    ("cascade.previewer=/nowhere/previewer.safetensors", 1,
     "cascade.previewer: '/nowhere/previewer.safetensors' does not exist; give Stable Cascade's previewer.safetensors "
     "or leave it empty"),
    (CLASS_IMAGES, 1, "data.concepts[].class_images: Stable Cascade draws class images through its decoder; set "
                      "cascade.decoder (stages B and A) or set class_images to 0"),
])
def test_check_refuses_what_train_refuses_in_the_same_line(setting: str, code: int, line: str, cascade_model: Path,
                                                           tmp_path: Path, cli) -> None:
    """What the adapter refused at start only (check passed it, train refused: found in review) is check's too."""
    refused_alike(cli, "cascade", cascade_model, make_dataset(tmp_path / "data", count=2), tmp_path, setting, code,
                  line)


@pytest.mark.parametrize("feature", ["masked_loss", "ema"])
def test_masked_loss_and_ema_reach_cascade_runs(feature: str, cascade_model: Path, tmp_path: Path) -> None:
    """All-black masks with unmasked_weight 0 leave nothing to learn; an EMA never updated saves the initial
    adapter: either way the file's lora_up stays zero, where the plain run's does not (the preset tests)."""
    from tests.trainer.test_masked_loss import write_mask

    data = make_dataset(tmp_path / "data", count=2)
    sets = ["training.epochs=2"]
    if feature == "masked_loss":
        for image in sorted(data.glob("*.png")):
            write_mask(image, box=(0, 0, 0, 0))
        sets += ["training.masked_loss=true", "training.unmasked_weight=0"]
    else:
        sets += ["ema.mode=cpu", "ema.update_every=10000"]
    run = _new("m", cascade_model, data, tmp_path, *sets)
    assert train(run) == 0, events(run)[-1]
    state = load_file(run.output / "m.safetensors")
    ups = [v for k, v in state.items() if k.endswith("lora_up.weight")]
    assert ups and all(torch.count_nonzero(v) == 0 for v in ups)


def test_a_quantized_prior_is_refused_by_the_config() -> None:
    """diffusers' prior pipeline samples in its first weight's dtype, int8 for a quantized prior (measured)."""
    from tuitrain.config import ConfigError

    with pytest.raises(ConfigError, match=r"model.quantize: \"int8\": Stable Cascade's prior pipeline cannot"):
        parse_config({"model": {"family": "cascade", "quantize": "int8"}})


def test_the_latent_cache_is_keyed_on_the_effnet_file(cascade_model: Path, tmp_path: Path) -> None:
    """cascade.effnet may name a file outside the model folder: the latents it makes are cached under its path,
    size and time, so another encoder file never reuses them (found in the family's review)."""
    import os
    import shutil

    from tuitrain.trainer.families import get_adapter

    effnet = next(cascade_model.rglob("effnet_encoder.safetensors"))
    elsewhere = tmp_path / "my-effnet.safetensors"
    shutil.copy(effnet, elsewhere)
    identities = []
    for look, value in enumerate((str(effnet), str(elsewhere), str(elsewhere))):
        if look == 2:
            os.utime(elsewhere, ns=(1, 10**18))  # the file changed since the second look
        adapter = get_adapter("cascade")
        adapter.configure(parse_config({"model": {"family": "cascade", "base": str(cascade_model)},
                                        "cascade": {"effnet": value}}))
        identities.append(adapter.cache_identity())
    assert identities[0] != identities[1] != identities[2] and all(i.startswith("+effnet:") for i in identities)


def test_wuerstchens_encoder_given_as_cascade_effnet_is_refused_in_one_line(cascade_model: Path, tmp_path: Path) -> None:
    """The same network with an affine last batch norm is Würstchen v2's encoder, whose latents stage C never saw."""
    from tuitrain.trainer.errors import TrainingError
    from tuitrain.trainer.families.wuerstchen.tiny import tiny_effnet

    other = tiny_effnet().save(tmp_path / "w")
    adapter = get_adapter("cascade")
    adapter.configure(parse_config({"model": {"family": "cascade", "base": str(cascade_model)},
                                    "cascade": {"effnet": str(other)}}))
    with pytest.raises(TrainingError, match=r"^cascade\.effnet: '.*effnet_encoder\.safetensors' is Würstchen v2's "
                                             r"EfficientNet encoder"):
        adapter.parts(_load(cascade_model), "auto")
