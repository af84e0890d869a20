"""PixArt-α / Σ on tiny models: each flavour's preset trains and learns; the LoRA, LoKr and fine-tune outputs load
back (peft into PixArtTransformer2DModel, LyCORIS's formula, the original-layout file through the loader) and
reproduce the trainer's transformer; the prompt encoding is the pipelines' own; original-layout checkpoints
convert both ways; a run killed mid-way resumes bit for bit.

The family's contract (folder loading, every method, stop/resume, the bench batch) is
tests/trainer/test_conformance.py's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from tests.trainer.conftest import denoising_loss, make_dataset
from tests.trainer.harness import assert_outputs_agree, assert_same_weights, events, new_run, train
from tests.trainer.resume import crash_mid_run, resume_matches
from tests.trainer.test_flux import CAPTION
from tuitrain.config import load_config, parse_config
from tuitrain.trainer.families import get_adapter
from tuitrain.trainer.families.base import LatentBatch

FLAVOURS = ("sigma", "alpha")
PIPELINES = {"sigma": "PixArtSigmaPipeline", "alpha": "PixArtAlphaPipeline"}
SETS = ("data.resolution=64", "training.epochs=15", "training.learning_rate=5e-3", "training.lr_warmup_steps=0",
        "lora.rank=8", "lora.alpha=4", "lora.train_ff=true", "sampling.every_epochs=0", "saving.every_epochs=0",
        "training.gradient_checkpointing=false", "saving.dtype=fp32")


@pytest.fixture(scope="module")
def pixart_model(tmp_path_factory: pytest.TempPathFactory):
    from tuitrain.trainer.tiny import save_tiny_model

    made: dict[str, Path] = {}

    def get(flavour: str) -> Path:
        if flavour not in made:
            made[flavour] = save_tiny_model("pixart", tmp_path_factory.mktemp(f"pixart-{flavour}") / "model",
                                            flavour=flavour)
        return made[flavour]

    return get


def _load(model: Path) -> Any:
    from diffusers import DiffusionPipeline

    return DiffusionPipeline.from_pretrained(str(model), local_files_only=True)


def _adapter(config: Any) -> Any:
    adapter = get_adapter("pixart")
    adapter.configure(config)
    return adapter


@torch.no_grad()
def _output(adapter: Any, pipe: Any, timestep: int = 700) -> torch.Tensor:
    """The transformer's epsilon for fixed latents (seed 0), caption and timestep, through the family adapter."""
    parts = adapter.parts(pipe, "auto")
    latents = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    batch = LatentBatch(latents, adapter.encode_text(parts, [CAPTION]))
    return adapter.predict(parts, latents, torch.tensor([timestep]), batch)


def _eval_loss(pipe: Any, config: Any, data: Path, rounds: int = 6) -> float:
    return denoising_loss(pipe, "pixart", data, CAPTION, rounds, config)


def _trainers_transformer(run: Any, config: Any, model: Path) -> Any:
    """A pipeline whose transformer carries the run's adapter from its last backup: what the trainer computed."""
    from tuitrain.trainer import backup as backups
    from tuitrain.trainer.methods.lora import inject_lora, load_lora_state

    adapter = _adapter(config)
    pipe = _load(model)
    handles = inject_lora(pipe.transformer, [], config.lora, unet_target_modules=list(adapter.attention_modules),
                          unet_ff_modules=list(adapter.feed_forward_modules), unet_conv_modules=[],
                          text_encoder_target_modules=[], denoiser_name="transformer")
    found = backups.latest_backup(run.checkpoints)
    assert found is not None and found.step == events(run, "finished")[-1]["step"]
    load_lora_state(handles, found.weights)
    return pipe


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_prompt_encoding_is_the_pipelines(flavour: str, pixart_model) -> None:
    pipe = _load(pixart_model(flavour))
    assert type(pipe).__name__ == PIPELINES[flavour]  # the folder's own pipeline class
    adapter = get_adapter("pixart")
    parts = adapter.parts(pipe, "auto")
    assert parts.flavour == flavour and parts.prediction_type == "epsilon"  # detected from model_index.json
    mine = adapter.encode_text(parts, [CAPTION, "x"])
    length = {"sigma": 300, "alpha": 120}[flavour]
    with torch.no_grad():
        hidden, mask, _, _ = pipe.encode_prompt([CAPTION, "x"], do_classifier_free_guidance=False,
                                                clean_caption=False, max_sequence_length=length)
    assert mine["hidden"].shape[1] == length
    torch.testing.assert_close(mine["hidden"], hidden)
    torch.testing.assert_close(mine["mask"], mask.float())
    assert mine["mask"][1].sum() < mine["mask"][0].sum()  # the short caption's padding is masked out


def test_alpha_passes_the_micro_conditions_sigma_does_not(pixart_model) -> None:
    """α 1024's transformer reads resolution and aspect ratio (PixArtAlphaPipeline's values); Σ's has no embedders."""
    pipe = _load(pixart_model("alpha"))
    adapter = get_adapter("pixart")
    parts = adapter.parts(pipe, "auto")
    assert parts.denoiser.use_additional_conditions
    latents = torch.randn(2, 4, 8, 12, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        batch = LatentBatch(latents, adapter.encode_text(parts, [CAPTION, CAPTION]))
        mine = adapter.predict(parts, latents, torch.tensor([300, 300]), batch)
        theirs = parts.denoiser(latents, encoder_hidden_states=batch.conditioning["hidden"],
                                encoder_attention_mask=batch.conditioning["mask"], timestep=torch.tensor([300, 300]),
                                added_cond_kwargs={"resolution": torch.tensor([[64.0, 96.0]] * 2),
                                                   "aspect_ratio": torch.tensor([[64 / 96]] * 2)},
                                return_dict=False)[0]
    assert mine.shape == latents.shape and theirs.shape[1] == 8  # learned sigma: the epsilon half is trained
    torch.testing.assert_close(mine, theirs[:, :4])
    assert not _load(pixart_model("sigma")).transformer.use_additional_conditions


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_each_flavour_trains_from_its_preset_learns_and_the_lora_reproduces_the_trainer(
        flavour: str, pixart_model, tmp_path: Path) -> None:
    from tuitrain.trainer.families.pixart.lora import load_lora_weights

    model = pixart_model(flavour)
    data = make_dataset(tmp_path / "data", count=2)
    run = new_run("p", model, data, *SETS, preset=f"pixart-{flavour}-lora", where=tmp_path)
    config = load_config(run.config)
    assert config.model.family == "pixart" and config.model.flavour == flavour
    assert train(run) == 0, events(run)[-1]
    assert events(run, "started")[0]["family"] == "pixart"

    path = run.output / "p.safetensors"
    with safe_open(path, "pt") as f:
        keys, meta = list(f.keys()), f.metadata()
    assert keys and all(k.startswith("transformer.") and k.endswith((".lora_A.weight", ".lora_B.weight")) for k in keys)
    assert any(".attn2.to_k." in k for k in keys) and any(".ff.net.2." in k for k in keys)
    assert not any(k.endswith(".alpha") for k in keys)  # alpha / rank (0.5 here) is folded into lora_B
    assert meta["modelspec.architecture"] == f"pixart-{flavour}/lora"

    adapter = _adapter(config)
    before = _eval_loss(_load(model), config, data)
    loaded = _load(model)
    load_lora_weights(loaded, path)  # peft into PixArtTransformer2DModel: diffusers has no PixArt LoRA loader
    after = _eval_loss(loaded, config, data)
    assert after < 0.9 * before, (before, after)

    base, trained = _output(adapter, _load(model)), _output(adapter, _trainers_transformer(run, config, model))
    assert (trained - base).abs().max() > 1e-2
    torch.testing.assert_close(_output(adapter, loaded), trained, rtol=1e-4, atol=1e-5)


def _lycoris_delta(state: dict[str, torch.Tensor], name: str) -> torch.Tensor:
    """ΔW of one LoKr module as LyCORIS's loaders (ComfyUI, A1111) rebuild it: kron(w1, w2) x alpha / r, where r is
    a decomposed factor's rank and the scale is 1 when both factors are whole (export/lycoris.py)."""
    w1 = state.get(f"{name}.lokr_w1")
    if w1 is None:
        w1 = state[f"{name}.lokr_w1_a"] @ state[f"{name}.lokr_w1_b"]
    w2 = state.get(f"{name}.lokr_w2")
    rank = None
    if w2 is None:
        w2, rank = state[f"{name}.lokr_w2_a"] @ state[f"{name}.lokr_w2_b"], state[f"{name}.lokr_w2_b"].shape[0]
    scale = 1.0 if rank is None else float(state[f"{name}.alpha"]) / rank
    return torch.kron(w1.float(), w2.float()) * scale


def test_a_lokr_file_reproduces_the_trainer(pixart_model, tmp_path: Path) -> None:
    """LoKr under `transformer.<module path>` (the names ComfyUI maps for PixArt, LyCORIS's tensor suffixes):
    merged into the base weights by the loaders' formula, it computes what the trainer's adapter computed."""
    model = pixart_model("sigma")
    data = make_dataset(tmp_path / "data", count=2)
    run = new_run("k", model, data, *SETS, "lora.type=lokr", "lora.lokr_factor=4", "training.epochs=2",
                  preset="pixart-sigma-lora", where=tmp_path)
    config = load_config(run.config)
    assert train(run) == 0, events(run)[-1]
    state = load_file(run.output / "k.safetensors")
    assert state and all(k.startswith("transformer.transformer_blocks.") for k in state)

    merged = _load(model)
    modules = dict(merged.transformer.named_modules())
    names = {k.rsplit(".", 1)[0] for k in state}
    with torch.no_grad():
        for name in names:
            module = modules[name[len("transformer."):]]
            module.weight += _lycoris_delta(state, name).reshape(module.weight.shape)
    adapter = _adapter(config)
    trained = _output(adapter, _trainers_transformer(run, config, model))
    assert (trained - _output(adapter, _load(model))).abs().max() > 1e-3
    torch.testing.assert_close(_output(adapter, merged), trained, rtol=1e-4, atol=1e-5)


def test_a_finetune_saves_the_original_layout_which_loads_back_as_the_trained_model(pixart_model,
                                                                                    tmp_path: Path) -> None:
    """The fine-tune's file is the transformer in the original repository's names; as model.base (the rest from
    model.config) it loads to exactly the weights of the final diffusers folder."""
    from tuitrain.trainer.loading import load_pipeline

    model = pixart_model("alpha")
    data = make_dataset(tmp_path / "data", count=2)
    run = new_run("f", model, data, *SETS, "training.method=finetune", "training.epochs=2",
                  "training.learning_rate=1e-3", "finetune.diffusers_folder=true", "saving.dtype=fp32",
                  preset="pixart-alpha-lora", where=tmp_path)
    assert train(run) == 0, events(run)[-1]
    file = run.output / "f.safetensors"
    with safe_open(file, "pt") as f:
        keys = set(f.keys())
    assert "blocks.0.attn.qkv.weight" in keys and "csize_embedder.mlp.0.weight" in keys
    folder = _load(run.output / "f-diffusers")
    assert type(folder).__name__ == "PixArtAlphaPipeline"

    cfg = parse_config({"model": {"family": "pixart", "base": str(file), "config": str(model)}})
    from_file = load_pipeline(cfg.model, "pixart", config_dir=tmp_path)
    assert type(from_file).__name__ == "PixArtAlphaPipeline"
    mine, theirs = from_file.transformer.state_dict(), folder.transformer.state_dict()
    assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)
    assert not all(torch.equal(mine[k], v) for k, v in _load(model).transformer.state_dict().items())


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_an_original_checkpoint_converts_both_ways(flavour: str, pixart_model, tmp_path: Path) -> None:
    """A tiny model written in the original repository's layout (with its y_embedding and pos_embed, under
    ComfyUI's prefix or bare) loads back through model.base to the same outputs; `tuitrain check` knows it."""
    from safetensors.torch import save_file

    from tuitrain.trainer.families.pixart.layout import from_original, to_original
    from tuitrain.trainer.loading import load_pipeline
    from tuitrain.trainer.loading.preflight import inspect_base

    model = pixart_model(flavour)
    pipe = _load(model)
    original = to_original(pipe.transformer.state_dict())
    assert "blocks.1.cross_attn.kv_linear.weight" in original and not any(k.startswith("transformer_blocks") for k in original)
    assert ("csize_embedder.mlp.0.weight" in original) == (flavour == "alpha")
    back = from_original(original)
    assert back.keys() == pipe.transformer.state_dict().keys()
    length = {"sigma": 300, "alpha": 120}[flavour]
    extras = {"y_embedder.y_embedding": torch.randn(length, 32), "pos_embed": torch.randn(1, 16, 24)}
    adapter = get_adapter("pixart")
    expected = _output(adapter, pipe)
    for prefix in ("", "model.diffusion_model."):
        file = tmp_path / f"pixart{prefix[:5]}.safetensors"
        save_file({prefix + k: v.contiguous() for k, v in {**original, **extras}.items()}, str(file))
        cfg = parse_config({"model": {"family": "pixart", "base": str(file), "config": str(model)}})
        assert inspect_base(cfg.model, "pixart", tmp_path).startswith("PixArt transformer file")
        loaded = load_pipeline(cfg.model, "pixart", config_dir=tmp_path)
        assert type(loaded).__name__ == PIPELINES[flavour]
        assert_same_weights(loaded.transformer, pipe.transformer)
        assert_outputs_agree(_output(adapter, loaded), expected)


def test_an_original_checkpoint_without_model_config_or_incomplete_is_one_line(pixart_model, tmp_path: Path) -> None:
    from safetensors.torch import save_file

    from tuitrain.trainer.families.pixart.layout import to_original
    from tuitrain.trainer.loading import ModelLoadError, load_pipeline

    model = pixart_model("sigma")
    original = to_original(_load(model).transformer.state_dict())
    file = tmp_path / "pixart.safetensors"
    save_file({k: v.contiguous() for k, v in original.items()}, str(file))
    no_config = parse_config({"model": {"family": "pixart", "base": str(file)}})
    with pytest.raises(ModelLoadError, match=r"^model\.config: not set; a PixArt transformer file"):
        load_pipeline(no_config.model, "pixart", config_dir=tmp_path)
    del original["final_layer.scale_shift_table"]
    save_file({k: v.contiguous() for k, v in original.items()}, str(file))
    cfg = parse_config({"model": {"family": "pixart", "base": str(file), "config": str(model)}})
    with pytest.raises(ModelLoadError, match=r"^model\.base: '.*' is not a complete PixArt transformer: it lacks "
                                             r"'final_layer\.scale_shift_table'$"):
        load_pipeline(cfg.model, "pixart", config_dir=tmp_path)


def test_a_run_killed_mid_way_resumes_bit_for_bit(pixart_model, tmp_path: Path) -> None:
    """α (the flavour the conformance tests do not train): crashed after a random step, resumed from its backup,
    the LoRA equals an uninterrupted run's."""
    model = pixart_model("alpha")
    data = make_dataset(tmp_path / "data", count=4)
    common = (*SETS, "training.epochs=3", "training.batch_size=2", "saving.backup_every_steps=2",
              "saving.backup_keep_last=2")
    straight = new_run("straight", model, data, *common, preset="pixart-alpha-lora", where=tmp_path)
    assert train(straight) == 0, events(straight)[-1]
    broken = new_run("broken", model, data, *common, preset="pixart-alpha-lora", where=tmp_path)
    last_step = crash_mid_run(broken, (3, 5))  # after the first backup (step 2)
    resume_matches(broken, straight.output / "straight.safetensors", last_step, backup_every=2, in_process=True)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_samples_are_drawn_through_the_flavours_pipeline(flavour: str, pixart_model, tmp_path: Path) -> None:
    """Sampling during training goes through PixArtSigmaPipeline / PixArtAlphaPipeline (α's passes its
    micro-conditions), with a negative prompt and CFG, and writes the images."""
    from PIL import Image

    data = make_dataset(tmp_path / "data", count=2)
    sampling = ("sampling.before_training=true", "sampling.every_epochs=1", "sampling.steps=2", "sampling.cfg=4.0",
                "sampling.prompts=[{prompt = 'a red square', negative_prompt = 'blue'}]")
    run = new_run("s", pixart_model(flavour), data, *SETS, "training.epochs=1", *sampling,
                  preset=f"pixart-{flavour}-lora", where=tmp_path)
    assert train(run) == 0, events(run)[-1]
    drawn = events(run, "sample")
    assert len(drawn) == 2  # before training and after the epoch
    images = [Image.open(e["path"]) for e in drawn]
    assert all(image.size == (64, 64) for image in images)


def test_t5_max_length_is_the_pipelines(pixart_model) -> None:
    pipe = _load(pixart_model("sigma"))
    config = parse_config({"model": {"family": "pixart", "base": "x"}, "pixart": {"t5_max_length": 24}})
    adapter = _adapter(config)
    parts = adapter.parts(pipe, "auto")
    mine = adapter.encode_text(parts, [CAPTION])
    with torch.no_grad():
        hidden, mask, _, _ = pipe.encode_prompt([CAPTION], do_classifier_free_guidance=False, clean_caption=False,
                                                max_sequence_length=24)
    assert mine["hidden"].shape[1] == 24
    torch.testing.assert_close(mine["hidden"], hidden)
    assert adapter.text_settings(parts) == "t5=24"
    assert adapter.sample_inputs(parts, {"prompt": "a", "negative_prompt": "", "steps": 2, "cfg": 4.0, "width": 64,
                                         "height": 64})["max_sequence_length"] == 24


@pytest.mark.parametrize(("sets", "reason"), [
    (("lora.train_text_encoder=true",), "lora.train_text_encoder: PixArt's only text encoder is T5, which tuitrain "
                                        "does not train; set it to false"),
    (("training.method=finetune", "finetune.train_text_encoder=true"),
     "finetune.train_text_encoder: PixArt's only text encoder is T5, which tuitrain does not train; set it to false"),
    (("saving.diffusers_format=true",), "saving.diffusers_format: diffusers has no PixArt LoRA loader or writer "
                                        "(save_lora_weights); the saved .safetensors is already in its peft naming "
                                        "(transformer.<module>.lora_A/B): turn it off"),
])
def test_what_pixart_cannot_do_is_refused_at_start_in_one_line(sets: tuple[str, ...], reason: str, pixart_model,
                                                                tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data", count=2)
    run = new_run("t", pixart_model("sigma"), data, *SETS, *sets, preset="pixart-sigma-lora", where=tmp_path)
    assert train(run) == 1
    assert events(run, "finished")[-1]["reason"] == reason
    assert not events(run, "step")  # refused before training


@pytest.mark.parametrize("feature", ["masked_loss", "ema"])
def test_masked_loss_and_ema_reach_pixart_runs(feature: str, pixart_model, tmp_path: Path) -> None:
    """All-black masks with unmasked_weight 0 leave nothing to learn; an EMA never updated saves the initial
    adapter: either way the file's lora_B stays zero, where the plain run's does not (the preset tests)."""
    from tests.trainer.test_masked_loss import write_mask

    data = make_dataset(tmp_path / "data", count=2)
    sets = ["training.epochs=2"]
    if feature == "masked_loss":
        for image in sorted(data.glob("*.png")):
            write_mask(image, box=(0, 0, 0, 0))
        sets += ["training.masked_loss=true", "training.unmasked_weight=0"]
    else:
        sets += ["ema.mode=cpu", "ema.update_every=10000"]
    run = new_run("m", pixart_model("sigma"), data, *SETS, *sets, preset="pixart-sigma-lora", where=tmp_path)
    assert train(run) == 0, events(run)[-1]
    state = load_file(run.output / "m.safetensors")
    ups = [v for k, v in state.items() if k.endswith("lora_B.weight")]
    assert ups and all(torch.count_nonzero(v) == 0 for v in ups)


def test_an_alpha_transformer_file_with_a_sigma_folder_trains_as_alpha(pixart_model, tmp_path: Path) -> None:
    """The file decides the micro-conditions; with them the flavour is α (its pipeline feeds them), whatever
    model.config's pipeline; model.flavour = 'sigma' for it is refused in one line."""
    from safetensors.torch import save_file

    from tuitrain.trainer.errors import TrainingError
    from tuitrain.trainer.families.pixart.layout import to_original
    from tuitrain.trainer.loading import load_pipeline

    file = tmp_path / "alpha.safetensors"
    original = to_original(_load(pixart_model("alpha")).transformer.state_dict())
    save_file({k: v.contiguous() for k, v in original.items()}, str(file))
    config = parse_config({"model": {"family": "pixart", "base": str(file), "config": str(pixart_model("sigma"))}})
    pipe = load_pipeline(config.model, "pixart", config_dir=tmp_path)
    assert type(pipe).__name__ == "PixArtSigmaPipeline" and pipe.transformer.use_additional_conditions
    parts = _adapter(config).parts(pipe, "auto")
    assert parts.flavour == "alpha" and type(parts.pipeline).__name__ == "PixArtAlphaPipeline"
    image = parts.pipeline(**_adapter(config).sample_inputs(parts, {"prompt": "a", "negative_prompt": "", "steps": 2,
                                                                    "cfg": 4.0, "width": 64, "height": 64}),
                           output_type="np").images
    assert image.shape == (1, 64, 64, 3)
    sigma = parse_config({"model": {"family": "pixart", "base": str(file), "flavour": "sigma"}})
    with pytest.raises(TrainingError, match=r"^model\.flavour: 'sigma', but the transformer has PixArt-α's "):
        _adapter(sigma).parts(pipe, "auto")
