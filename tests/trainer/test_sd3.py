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
from tuitrain.config import ConfigError, load_config, parse_config
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
    run = new_run("s", sd3_model, data, *SETS, "lora.train_text_encoder=true", preset="sd35-medium-lora",
                  where=tmp_path)
    config = load_config(run.config)
    assert config.model.flavour == "3.5-medium" and config.preset == "sd35-medium-lora"
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


@pytest.mark.parametrize("length", [0, 32])
def test_drop_t5_encodes_zeros_as_the_pipeline_without_t5(sd3_model: Path, length: int) -> None:
    """sd3.drop_t5: the T5 tokens are the zeros StableDiffusion3Pipeline makes when text_encoder_3 is None (of
    sd3.t5_max_length tokens), T5 leaves the pipeline, and the text cache key says so."""
    from diffusers import StableDiffusion3Pipeline

    config = parse_config({"model": {"family": "sd3", "base": str(sd3_model)},
                          "sd3": {"drop_t5": True, "t5_max_length": length}})
    adapter = get_adapter("sd3")
    adapter.configure(config)
    pipe = StableDiffusion3Pipeline.from_pretrained(str(sd3_model), local_files_only=True)
    parts = adapter.parts(pipe, "auto")
    assert pipe.text_encoder_3 is None and len(parts.text_encoders) == 2  # T5 never reaches the device
    mine = adapter.encode_text(parts, [CAPTION, "x"])
    with torch.no_grad():
        hidden, _, pooled, _ = pipe.encode_prompt(prompt=[CAPTION, "x"], prompt_2=None, prompt_3=None,
                                                  do_classifier_free_guidance=False,
                                                  max_sequence_length=length or 256)
    assert hidden.shape[1] == 77 + (length or 256)
    torch.testing.assert_close(mine["hidden"], hidden)
    torch.testing.assert_close(mine["pooled"], pooled)
    assert not mine["hidden"][:, 77:].any()
    assert adapter.text_settings(parts) == f"t5=zeros t5={length or 256}"
    assert adapter.sample_inputs(parts, {"prompt": "a", "negative_prompt": "", "steps": 2, "cfg": 4.0, "width": 64,
                                         "height": 64})["max_sequence_length"] == (length or 256)


def test_t5_max_length_is_the_pipelines(sd3_model: Path) -> None:
    from diffusers import StableDiffusion3Pipeline

    config = parse_config({"model": {"family": "sd3", "base": str(sd3_model)}, "sd3": {"t5_max_length": 40}})
    adapter = get_adapter("sd3")
    adapter.configure(config)
    pipe = StableDiffusion3Pipeline.from_pretrained(str(sd3_model), local_files_only=True)
    parts = adapter.parts(pipe, "auto")
    mine = adapter.encode_text(parts, [CAPTION])
    with torch.no_grad():
        hidden, _, _, _ = pipe.encode_prompt(prompt=[CAPTION], prompt_2=None, prompt_3=None,
                                             do_classifier_free_guidance=False, max_sequence_length=40)
    assert mine["hidden"].shape[1] == 77 + 40
    torch.testing.assert_close(mine["hidden"], hidden)
    assert adapter.text_settings(parts) == "t5=40"
    default = get_adapter("sd3")
    assert default.text_settings(default.parts(StableDiffusion3Pipeline.from_pretrained(
        str(sd3_model), local_files_only=True), "auto")) == ""  # text caches made before [sd3] stay valid


def test_a_run_without_t5_trains_learns_and_samples(sd3_model: Path, tmp_path: Path) -> None:
    from diffusers import StableDiffusion3Pipeline

    data = make_dataset(tmp_path / "data", count=2)
    sampling = ("sampling.before_training=true", "sampling.steps=2", "sampling.prompts=[{prompt = 'a red square'}]")
    run = new_run("n", sd3_model, data, *SETS, "sd3.drop_t5=true", "sd3.t5_max_length=16", *sampling,
                  preset="sd35-medium-lora", where=tmp_path)
    config = load_config(run.config)
    assert config.sd3.drop_t5
    assert train(run) == 0, events(run)[-1]
    assert events(run, "sample")

    def load() -> Any:
        pipe = StableDiffusion3Pipeline.from_pretrained(str(sd3_model), local_files_only=True)
        pipe.text_encoder_3 = None  # as the run trained
        return pipe

    before = eval_loss_for("sd3", load(), config, data)
    loaded = load()
    loaded.load_lora_weights(str(run.output / "n.safetensors"))
    assert eval_loss_for("sd3", loaded, config, data) < 0.9 * before


@pytest.mark.parametrize(("sets", "message"), [
    ({"t5_max_length": 513}, "sd3.t5_max_length"),
    ({"drop_t5": "yes"}, "sd3.drop_t5"),
])
def test_sd3_option_mistakes_are_named(sets: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config({"model": {"family": "sd3", "base": "x"}, "sd3": sets})


def _sai_state(pipe: Any, *, all_in_one: bool) -> dict[str, torch.Tensor]:
    """The pipeline in SAI's single-file layout: the transformer alone, or with the two CLIPs and the VAE as in
    sd3_medium_incl_clips.safetensors (no T5)."""
    from tuitrain.trainer.families.sd3.layout import to_sai
    from tuitrain.trainer.loading.clip import hf_to_transformers_layout
    from tuitrain.trainer.loading.layout import vae_to_ldm

    state = to_sai(pipe.transformer.state_dict())
    if all_in_one:
        state.update({"first_stage_model." + k: v for k, v in vae_to_ldm(pipe.vae.state_dict(), pipe.vae.config).items()})
        for name, encoder in (("clip_l", pipe.text_encoder), ("clip_g", pipe.text_encoder_2)):
            layout = hf_to_transformers_layout(encoder.state_dict())
            state.update({f"text_encoders.{name}.transformer.{k}": v for k, v in layout.items()})
    return {k: v.contiguous() for k, v in state.items()}


@pytest.mark.parametrize("all_in_one", [False, True])
def test_sai_single_files_load_offline_with_model_config(sd3_model: Path, tmp_path: Path, all_in_one: bool) -> None:
    """SAI's transformer-only file and the all-in-one kind (CLIPs and VAE inside, T5 not) load through model.base
    with model.config naming the diffusers folder for the rest; every part the file holds comes from the file."""
    from diffusers import StableDiffusion3Pipeline
    from safetensors.torch import save_file

    from tuitrain.trainer.loading import load_pipeline
    from tuitrain.trainer.loading.preflight import inspect_base

    source = StableDiffusion3Pipeline.from_pretrained(str(sd3_model), local_files_only=True)
    torch.manual_seed(1)
    for module in (source.transformer, source.vae, source.text_encoder, source.text_encoder_2):
        for p in module.parameters():  # weights the folder does not have: each part must come from the file
            p.data += 0.01 * torch.randn_like(p)
    file = tmp_path / "sd3.safetensors"
    save_file(_sai_state(source, all_in_one=all_in_one), str(file))
    config = parse_config({"model": {"family": "sd3", "base": str(file), "config": str(sd3_model)}})
    assert inspect_base(config.model, "sd3", tmp_path).startswith("SD3 transformer file")
    loaded = load_pipeline(config.model, "sd3", config_dir=tmp_path)
    folder = StableDiffusion3Pipeline.from_pretrained(str(sd3_model), local_files_only=True)
    from_file = ["transformer", *(["vae", "text_encoder", "text_encoder_2"] if all_in_one else [])]
    for name in ("transformer", "vae", "text_encoder", "text_encoder_2", "text_encoder_3"):
        expected = (source if name in from_file else folder).__getattribute__(name).state_dict()
        got = getattr(loaded, name).state_dict()
        # diffusers gives SAI's CLIP-L an identity projection (the files carry none that SD3 uses)
        differ = [k for k in expected if not torch.equal(expected[k], got[k]) and k != "text_projection.weight"]
        assert not differ, (name, differ[:3])
    no_config = parse_config({"model": {"family": "sd3", "base": str(file)}})
    from tuitrain.trainer.loading import ModelLoadError

    with pytest.raises(ModelLoadError, match=r"^model\.config: not set; a SD3 transformer file"):
        load_pipeline(no_config.model, "sd3", config_dir=tmp_path)


def test_a_finetune_saves_the_transformer_in_sais_layout(sd3_model: Path, tmp_path: Path) -> None:
    """The fine-tune's file is SAI's layout (what ComfyUI loads as an SD3 diffusion model), and it loads back
    through model.base to exactly the final diffusers folder's transformer."""
    from diffusers import StableDiffusion3Pipeline

    from tuitrain.trainer.loading import load_pipeline

    data = make_dataset(tmp_path / "data", count=2)
    run = new_run("f", sd3_model, data, *SETS, "training.method=finetune", "training.epochs=1",
                  "training.learning_rate=1e-3", "finetune.diffusers_folder=true", "saving.dtype=fp32",
                  preset="sd35-medium-lora", where=tmp_path)
    assert train(run) == 0, events(run)[-1]
    file = run.output / "f.safetensors"
    with safe_open(file, "pt") as f:
        keys = set(f.keys())
    assert "model.diffusion_model.joint_blocks.0.x_block.attn.qkv.weight" in keys
    assert "model.diffusion_model.joint_blocks.0.x_block.attn2.qkv.weight" in keys  # 3.5 medium's second attention
    config = parse_config({"model": {"family": "sd3", "base": str(file), "config": str(sd3_model)}})
    mine = load_pipeline(config.model, "sd3", config_dir=tmp_path).transformer.state_dict()
    theirs = StableDiffusion3Pipeline.from_pretrained(str(run.output / "f-diffusers"),
                                                      local_files_only=True).transformer.state_dict()
    assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)


@pytest.mark.parametrize(("flavour", "changes"), [
    ("3.5-medium", {"num_layers": 24, "num_attention_heads": 24, "caption_projection_dim": 1536,
                    "pos_embed_max_size": 384, "dual_attention_layers": tuple(range(13)), "qk_norm": "rms_norm"}),
    ("3-medium", {"num_layers": 24, "num_attention_heads": 24, "caption_projection_dim": 1536,
                  "pos_embed_max_size": 192, "dual_attention_layers": (), "qk_norm": None}),
])
def test_medium_flavours_have_their_own_vram_numbers(flavour: str, changes: dict[str, Any]) -> None:
    """The registry's per-flavour numbers are the medium architectures' (the shipped large config with the
    medium's published changes, meta device), and the config editor's estimate uses them."""
    from diffusers import SD3Transformer2DModel

    from tuitrain.families import FAMILIES
    from tuitrain.trainer.families.sd3.adapter import ATTENTION, FEED_FORWARD
    from tuitrain.trainer.families.sd3.files import SD3
    from tuitrain.tui.config_editor.estimate import estimate_vram

    config = {**SD3Transformer2DModel.load_config(str(SD3.configs), subfolder="transformer"), **changes}
    with torch.device("meta"):
        model = SD3Transformer2DModel.from_config(config)

    def per_rank(suffixes: tuple[str, ...]) -> int:
        return sum(m.in_features + m.out_features for n, m in model.named_modules()
                   if isinstance(m, torch.nn.Linear) and any(n == s or n.endswith("." + s) for s in suffixes))

    memory = FAMILIES["sd3"].memory_for(flavour)
    count = sum(p.numel() for p in model.parameters())
    assert abs(count - memory.params[0]) / count < 0.01
    assert (per_rank(ATTENTION), per_rank(FEED_FORWARD)) == (memory.lora_per_rank["attention"], memory.lora_per_rank["ff"])
    table = {"model": {"family": "sd3", "flavour": flavour}, "data": {"resolution": 1024}}
    large = {"model": {"family": "sd3", "flavour": "3.5-large"}, "data": {"resolution": 1024}}
    assert estimate_vram(table).weights_gib < 0.5 * estimate_vram(large).weights_gib


def test_preconditioned_outputs_train_and_learn(sd3_model: Path, tmp_path: Path) -> None:
    """objective.precondition_outputs (diffusers' SD3 script's option) through `tuitrain train`: the run's losses
    are the clean-latent ones (smaller than the velocity losses: sigma^2 <= 1), and the LoRA lowers the
    fixed-noise velocity loss as well."""
    from diffusers import StableDiffusion3Pipeline

    data = make_dataset(tmp_path / "data", count=2)
    runs = {}
    for name, extra in (("v", ()), ("x0", ("objective.precondition_outputs=true",))):
        runs[name] = new_run(name, sd3_model, data, *SETS, *extra, preset="sd35-medium-lora", where=tmp_path)
        assert train(runs[name]) == 0, events(runs[name])[-1]
    first = {name: events(run, "step")[0]["loss"] for name, run in runs.items()}
    assert first["x0"] < first["v"]  # the same first draw, weighed by sigma^2
    config = load_config(runs["x0"].config)
    assert config.objective.precondition_outputs

    def load() -> Any:
        return StableDiffusion3Pipeline.from_pretrained(str(sd3_model), local_files_only=True)

    before = eval_loss_for("sd3", load(), config, data)
    loaded = load()
    loaded.load_lora_weights(str(runs["x0"].output / "x0.safetensors"))
    assert eval_loss_for("sd3", loaded, config, data) < 0.9 * before
