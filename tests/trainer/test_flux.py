"""FLUX.1 on tiny models: each flavour's preset trains and learns; the LoRA file reproduces the trainer in diffusers.

The family's contract (folder loading, every method, stop/resume, diffusers' loaders) is
tests/trainer/test_conformance.py's; this file checks what is Flux's own: presets, flavours
told apart by the guidance embedding, the folded-scale LoRA file, the config rules.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image
from safetensors import safe_open

from tests.trainer.conftest import denoising_loss, make_dataset
from tests.trainer.harness import events, new_run, train
from tuitrain.config import ConfigError, load_config, parse_config
from tuitrain.families import FAMILIES
from tuitrain.trainer.families import get_adapter
from tuitrain.trainer.families.base import LatentBatch

CAPTION = "a red square with a blue mark"
PRESET = {"dev": "flux-dev-lora", "krea": "flux-dev-lora", "schnell": "flux-schnell-lora"}
TINY_SETS = ("data.resolution=64", "training.epochs=15", "training.learning_rate=5e-3", "training.lr_warmup_steps=0",
             "lora.rank=8", "lora.alpha=8", "lora.train_ff=true", "sampling.every_epochs=0", "saving.every_epochs=0",
             "training.gradient_checkpointing=false")


@pytest.fixture(scope="module")
def flux_model(tmp_path_factory: pytest.TempPathFactory):
    from tuitrain.trainer.tiny import save_tiny_model

    made: dict[str, Path] = {}

    def get(flavour: str) -> Path:
        if flavour not in made:
            made[flavour] = save_tiny_model("flux", tmp_path_factory.mktemp(f"flux-{flavour}") / "model", flavour=flavour)
        return made[flavour]

    return get


def _pixels(data: Path) -> torch.Tensor:
    import numpy as np

    images = sorted(data.glob("*.png"))
    arrays = [np.asarray(Image.open(p).convert("RGB"), dtype=np.float32) for p in images]
    return torch.stack([torch.from_numpy(a).permute(2, 0, 1) for a in arrays]) / 127.5 - 1


def eval_loss(pipe: Any, config: Any, data: Path, rounds: int = 6) -> float:
    return eval_loss_for("flux", pipe, config, data, rounds)


def eval_loss_for(family: str, pipe: Any, config: Any, data: Path, rounds: int = 6) -> float:
    """conftest.denoising_loss as the run trained (its flow-matching options and family settings)."""
    return denoising_loss(pipe, family, data, CAPTION, rounds, config)


@torch.no_grad()
def denoiser_output(adapter: Any, pipe: Any, timestep: float = 700.0) -> torch.Tensor:
    """The denoiser's prediction for fixed latents (seed 0), caption and timestep, through the family adapter."""
    parts = adapter.parts(pipe, "auto")
    latents = torch.randn(1, adapter.info.latent_channels, 8, 8, generator=torch.Generator().manual_seed(0))
    batch = LatentBatch(latents, adapter.encode_text(parts, [CAPTION]))
    return adapter.predict(parts, latents, torch.tensor([timestep]), batch)


def adapter_from_backup(run: Any, config: Any, adapter: Any, denoiser: torch.nn.Module,
                        encoders: list[torch.nn.Module]) -> None:
    """Inject the run's adapter into `denoiser` (and `encoders`) and load its last backup: the trainer's model."""
    from tuitrain.trainer import backup as backups
    from tuitrain.trainer.methods.lora import chosen_modules, inject_lora, load_lora_state

    handles = inject_lora(denoiser, encoders, config.lora, unet_target_modules=list(adapter.attention_modules),
                          unet_ff_modules=list(adapter.feed_forward_modules), unet_conv_modules=[],
                          text_encoder_target_modules=list(adapter.text_encoder_modules), denoiser_name="transformer",
                          denoiser_modules=chosen_modules(config))
    found = backups.latest_backup(run.checkpoints)
    assert found is not None and found.step == events(run, "finished")[-1]["step"]
    load_lora_state(handles, found.weights)


@pytest.mark.parametrize("flavour", ["dev", "krea", "schnell"])
def test_each_flavour_trains_from_its_preset_and_learns(flavour: str, flux_model, tmp_path: Path) -> None:
    from diffusers import FluxPipeline

    model = flux_model(flavour)
    data = make_dataset(tmp_path / "data", count=2)
    run = new_run("f", model, data, *TINY_SETS, f"model.flavour={flavour}", preset=PRESET[flavour], where=tmp_path)
    config = load_config(run.config)
    assert config.model.family == "flux" and config.model.flavour == flavour
    assert train(run) == 0, events(run)[-1]
    started = events(run, "started")[0]
    assert started["family"] == "flux"

    path = run.output / "f.safetensors"
    with safe_open(path, "pt") as f:
        keys, meta = list(f.keys()), f.metadata()
    assert keys and all(k.startswith("transformer.") and k.endswith((".lora_A.weight", ".lora_B.weight")) for k in keys)
    assert not any(k.endswith(".alpha") for k in keys)  # the scale is folded into lora_B
    architecture = "flux-1-schnell/lora" if flavour == "schnell" else "flux-1-dev/lora"
    assert meta["modelspec.architecture"] == architecture and meta["ss_base_model_version"] == "flux1"
    assert meta["ss_guidance_scale"] == "1.0" and meta["ss_timestep_sampling"] == "sigmoid"
    assert "modelspec.prediction_type" not in meta  # not an epsilon / v model

    before_pipe = FluxPipeline.from_pretrained(str(model), local_files_only=True)
    before = eval_loss(before_pipe, config, data)
    before_pipe.load_lora_weights(str(path))
    after = eval_loss(before_pipe, config, data)
    assert after < 0.9 * before, (before, after)


def test_the_lora_file_reproduces_the_trainers_transformer_in_diffusers(flux_model, tmp_path: Path) -> None:
    """diffusers' load_lora_weights on the file computes what the trainer's own adapter computes (from its backup)."""
    from diffusers import FluxPipeline
    from safetensors.torch import load_file

    model = flux_model("dev")
    data = make_dataset(tmp_path / "data", count=2)
    run = new_run("f", model, data, *TINY_SETS, "training.epochs=2", "lora.alpha=2", "lora.train_ff=true",
                  "lora.train_text_encoder=true", preset="flux-dev-lora", where=tmp_path)
    config = load_config(run.config)
    assert train(run) == 0, events(run)[-1]

    mine = FluxPipeline.from_pretrained(str(model), local_files_only=True)
    adapter = get_adapter("flux")
    adapter.configure(config)
    adapter_from_backup(run, config, adapter, mine.transformer, [mine.text_encoder])

    theirs = FluxPipeline.from_pretrained(str(model), local_files_only=True)
    theirs.load_lora_weights(str(run.output / "f.safetensors"))
    assert any(k.startswith("text_encoder.") for k in load_file(run.output / "f.safetensors"))

    base = denoiser_output(adapter, FluxPipeline.from_pretrained(str(model), local_files_only=True))
    trained, loaded = denoiser_output(adapter, mine), denoiser_output(adapter, theirs)
    assert not torch.allclose(base, trained, atol=1e-4)  # the LoRA does something
    torch.testing.assert_close(loaded, trained, rtol=1e-4, atol=1e-5)


def test_a_flavour_the_weights_contradict_is_one_line(flux_model, tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data", count=2)
    run = new_run("f", flux_model("schnell"), data, *TINY_SETS, "model.flavour=dev", preset="flux-dev-lora",
                  where=tmp_path)
    assert train(run) == 1
    failed = events(run, "finished")[-1]
    assert failed["status"] == "failed"
    assert failed["reason"].startswith("model.flavour: 'dev', but the transformer has no guidance embedding")
    assert "\n" not in failed["reason"]


@pytest.mark.parametrize(("sets", "message"), [
    ({"data": {"bucket_step": 8, "resolution": 520}}, "data.resolution: flux images must be multiples of 16 px"),
    ({"data": {"bucket_step": 8, "resolution": 512}}, "data.bucket_step: flux images must be multiples of 16 px"),
    ({"sampling": {"sampler": "euler_a"}}, "sampling.sampler: flux samples with its own flow-matching scheduler"),
    ({"training": {"min_snr_gamma": 5.0}}, "training.min_snr_gamma: min-SNR weighting is for DDPM families"),
    ({"model": {"flavour": "768-v"}}, "model.flavour: must be one of the flux flavours (dev, schnell, krea, kontext)"),
])
def test_flux_config_mistakes_are_named(sets: dict[str, dict[str, Any]], message: str) -> None:
    table: dict[str, Any] = {"model": {"family": "flux", "base": "x"}, "data": {"resolution": 512}}
    for key, values in sets.items():
        table[key] = {**table.get(key, {}), **values}
    with pytest.raises(ConfigError) as err:
        parse_config(table)
    assert message in str(err.value)


def test_check_knows_a_flux_folder_and_a_bfl_transformer_file(flux_model, tmp_path: Path) -> None:
    from tuitrain.trainer.export.single_file import save_denoiser_file
    from tuitrain.trainer.families.flux.layout import to_bfl
    from tuitrain.trainer.loading.errors import ModelLoadError
    from tuitrain.trainer.loading.preflight import inspect_base
    from tuitrain.trainer.tiny import build_tiny_pipeline

    folder = flux_model("dev")
    model_cfg = parse_config({"model": {"family": "flux", "base": str(folder)}}).model
    assert inspect_base(model_cfg, "flux", tmp_path) == "Flux.1 diffusers folder (FluxPipeline)"

    file = save_denoiser_file(to_bfl(build_tiny_pipeline("flux").transformer.state_dict()), "flux",
                              tmp_path / "flux1-dev.safetensors")
    with_config = parse_config({"model": {"family": "flux", "base": str(file), "config": str(folder)}}).model
    assert inspect_base(with_config, "flux", tmp_path).startswith("Flux.1 transformer file (")
    alone = parse_config({"model": {"family": "flux", "base": str(file)}}).model  # CLIP-L, T5, VAE: from nowhere
    with pytest.raises(ModelLoadError, match=r"^model\.text_encoder: not set, and the FLUX\.1 transformer file .* holds "
                                             r"no CLIP-L text encoder; set model\.text_encoder to it"):
        inspect_base(alone, "flux", tmp_path)
    as_sdxl = parse_config({"model": {"family": "sdxl", "base": str(file)}}).model
    with pytest.raises(ModelLoadError, match=r"is a Flux\.1 transformer file alone, not a checkpoint of this family; "
                                             r"set model\.family = 'flux'"):
        inspect_base(as_sdxl, "sdxl", tmp_path)
    sdxl = parse_config({"model": {"family": "sdxl", "base": str(folder)}}).model
    with pytest.raises(ModelLoadError, match="looks like a Flux.1 model, but model.family = 'sdxl'; set model.family = 'flux'"):
        inspect_base(sdxl, "sdxl", tmp_path)
    assert FAMILIES["flux"].pixel_multiple == 16


def test_a_fine_tune_saves_a_bfl_transformer_that_loads_back(flux_model, tmp_path: Path) -> None:
    """The fine-tune's NAME.safetensors is the transformer in BFL names (what ComfyUI and Forge load as a
    diffusion model); as model.base with the base folder as model.config it gives the trained weights."""
    from diffusers import FluxPipeline

    from tuitrain.trainer.families.flux.layout import is_bfl
    from tuitrain.trainer.loading import load_pipeline

    model = flux_model("schnell")
    data = make_dataset(tmp_path / "data", count=2)
    run = new_run("ft", model, data, "data.resolution=64", "training.epochs=1", "sampling.every_epochs=0",
                  "saving.every_epochs=0", "optimizer.name=adamw", "training.gradient_checkpointing=false",
                  "model.flavour=schnell", preset="flux-dev-finetune", where=tmp_path)
    assert train(run) == 0, events(run)[-1]
    file = run.output / "ft.safetensors"
    with safe_open(file, "pt") as f:
        keys, meta = set(f.keys()), f.metadata()
    assert is_bfl(keys) and not any(k.startswith("guidance_in.") for k in keys)  # schnell: no guidance embedding
    assert meta["modelspec.architecture"] == "flux-1-schnell"

    config = parse_config({"model": {"family": "flux", "base": str(file), "config": str(model)}})
    loaded = load_pipeline(config.model, "flux", config_dir=tmp_path).transformer.state_dict()
    saved = FluxPipeline.from_pretrained(str(run.output / "ft-diffusers"), local_files_only=True).transformer.state_dict()
    base = FluxPipeline.from_pretrained(str(model), local_files_only=True).transformer.state_dict()
    assert loaded.keys() == saved.keys()
    assert all(torch.equal(loaded[k], saved[k]) for k in saved)
    assert any(not torch.equal(saved[k], base[k]) for k in saved)  # it did train


def test_bfl_layout_is_diffusers_converters_inverse_at_full_size_and_exact_on_tiny() -> None:
    """to_bfl / from_bfl: on the full-size FLUX.1-dev architecture (meta device: names and shapes, no memory)
    diffusers' own BFL converter turns our BFL names back into exactly the model's, as from_bfl does; on the
    tiny model the round trip is bit-exact (values: the fused q/k/v order, the swapped final adaLN halves)."""
    import json

    from diffusers import FluxTransformer2DModel
    from diffusers.loaders.single_file_utils import convert_flux_transformer_checkpoint_to_diffusers

    from tuitrain.trainer.families import family_files
    from tuitrain.trainer.families.flux.layout import from_bfl, is_bfl, to_bfl
    from tuitrain.trainer.tiny import build_tiny_pipeline

    config = json.loads((family_files("flux").configs / "transformer" / "config.json").read_text())
    with torch.device("meta"):
        full = FluxTransformer2DModel.from_config(config).state_dict()
        bfl = to_bfl(full)
        theirs = convert_flux_transformer_checkpoint_to_diffusers(dict(bfl))
        ours = from_bfl(bfl)
    assert is_bfl(bfl) and len(bfl) == 780
    for converted in (theirs, ours):
        assert converted.keys() == full.keys()
        assert all(converted[k].shape == full[k].shape for k in full)

    tiny = build_tiny_pipeline("flux").transformer.state_dict()
    back = from_bfl(to_bfl(tiny))
    assert back.keys() == tiny.keys() and all(torch.equal(back[k], tiny[k]) for k in tiny)
    comfy = {f"model.diffusion_model.{k}": v for k, v in to_bfl(tiny).items()}  # ComfyUI's saved prefix
    assert all(torch.equal(from_bfl(comfy)[k], tiny[k]) for k in tiny)


@pytest.mark.parametrize("kind", ["lokr", "loha"])
def test_lokr_and_loha_files_apply_as_comfyui_applies_them(kind: str, flux_model, tmp_path: Path) -> None:
    """The file names each module `lycoris_<diffusers path>` (ComfyUI's and Forge's Flux key map reads that
    next to `transformer.<path>`); merging it by the LyCORIS formulas ComfyUI applies gives the transformer
    the trainer had (rebuilt from its backup)."""
    from diffusers import FluxPipeline
    from safetensors.torch import load_file

    from tests.trainer.test_lycoris import by_module, formula_delta

    model = flux_model("dev")
    data = make_dataset(tmp_path / "data", count=2)
    run = new_run("k", model, data, *TINY_SETS, "training.epochs=2", f"lora.type={kind}", "lora.rank=4",
                  "lora.alpha=2", preset="flux-dev-lora", where=tmp_path)
    config = load_config(run.config)
    assert train(run) == 0, events(run)[-1]
    tensors = load_file(run.output / "k.safetensors")
    assert tensors and all(k.startswith("lycoris_") for k in tensors)
    assert any(k.startswith("lycoris_single_transformer_blocks_0_attn_to_q.") for k in tensors)
    with safe_open(run.output / "k.safetensors", "pt") as f:
        meta = f.metadata()
    assert meta["ss_network_module"] == "lycoris.kohya" and json_args(meta)["algo"] == kind

    adapter = get_adapter("flux")
    adapter.configure(config)
    mine = FluxPipeline.from_pretrained(str(model), local_files_only=True)
    adapter_from_backup(run, config, adapter, mine.transformer, [])

    merged = FluxPipeline.from_pretrained(str(model), local_files_only=True)
    modules = {name.replace(".", "_"): m for name, m in merged.transformer.named_modules()
               if isinstance(m, torch.nn.Linear)}
    with torch.no_grad():
        for name, parts in by_module(tensors).items():
            weight = modules[name.removeprefix("lycoris_")].weight
            weight += formula_delta(parts, weight.shape)

    base = denoiser_output(adapter, FluxPipeline.from_pretrained(str(model), local_files_only=True), 600.0)
    trained, applied = denoiser_output(adapter, mine, 600.0), denoiser_output(adapter, merged, 600.0)
    # Merged weights and peft's forward pass round differently in fp32 (~2e-5 here); the adapter's own
    # effect is orders of magnitude above that.
    assert (trained - base).abs().max() > 100 * 5e-5, (trained - base).abs().max()
    torch.testing.assert_close(applied, trained, rtol=1e-3, atol=5e-5)


def json_args(meta: dict[str, str]) -> dict[str, str]:
    import json

    return json.loads(meta["ss_network_args"])


def _trained_modules(path: Path, suffix: str = ".lora_A.weight") -> set[str]:
    with safe_open(path, "pt") as f:
        return {k.removeprefix("transformer.").removesuffix(suffix) for k in f.keys() if k.endswith(suffix)}


def test_a_named_target_set_chooses_the_layers_and_diffusers_applies_them(flux_model, tmp_path: Path) -> None:
    """lora.targets = "context" adapts the text stream's attention only; "ai-toolkit" adds the feed-forwards and
    every adaLN modulation, and diffusers' loader reproduces the trainer's transformer with them."""
    from diffusers import FluxPipeline

    from tuitrain.families import FAMILIES

    model = flux_model("dev")
    data = make_dataset(tmp_path / "data", count=2)
    run = new_run("c", model, data, *TINY_SETS, "training.epochs=1", "lora.targets=context", preset="flux-dev-lora",
                  where=tmp_path)
    assert train(run) == 0, events(run)[-1]
    assert _trained_modules(run.output / "c.safetensors") == {
        "transformer_blocks.0.attn.add_q_proj", "transformer_blocks.0.attn.add_k_proj",
        "transformer_blocks.0.attn.add_v_proj", "transformer_blocks.0.attn.to_add_out"}

    run = new_run("a", model, data, *TINY_SETS, "training.epochs=2", "lora.alpha=4", "lora.targets=ai-toolkit",
                  preset="flux-dev-lora", where=tmp_path)
    config = load_config(run.config)
    assert train(run) == 0, events(run)[-1]
    modules = _trained_modules(run.output / "a.safetensors")
    for expected in ("transformer_blocks.0.norm1.linear", "transformer_blocks.0.norm1_context.linear",
                     "single_transformer_blocks.0.norm.linear", "single_transformer_blocks.0.proj_mlp",
                     "transformer_blocks.0.ff_context.net.2", "proj_out"):
        assert expected in modules
    assert set(FAMILIES["flux"].lora_target_sets["ai-toolkit"]) > set(FAMILIES["flux"].lora_target_sets["all+ffs"])

    adapter = get_adapter("flux")
    adapter.configure(config)
    mine = FluxPipeline.from_pretrained(str(model), local_files_only=True)
    adapter_from_backup(run, config, adapter, mine.transformer, [])
    theirs = FluxPipeline.from_pretrained(str(model), local_files_only=True)
    theirs.load_lora_weights(str(run.output / "a.safetensors"))
    base = denoiser_output(adapter, FluxPipeline.from_pretrained(str(model), local_files_only=True))
    trained, loaded = denoiser_output(adapter, mine), denoiser_output(adapter, theirs)
    assert not torch.allclose(base, trained, atol=1e-4)
    torch.testing.assert_close(loaded, trained, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("sets", "message"), [
    (("lora.targets=tiny",), "lora.targets: 'single_transformer_blocks.7.proj_out' matches no linear or convolution "
                             "layer of the transformer"),
    (("lora.target_modules=['attn.to_q', 'attn.to_qq']",), "lora.target_modules: 'attn.to_qq' matches no linear"),
])
def test_target_names_that_match_nothing_stop_the_run_at_start(sets: tuple[str, ...], message: str, flux_model,
                                                               tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data", count=2)
    run = new_run("t", flux_model("dev"), data, *TINY_SETS, *sets, preset="flux-dev-lora", where=tmp_path)
    assert train(run) == 1
    failed = events(run, "finished")[-1]
    assert failed["status"] == "failed" and failed["reason"].startswith(message), failed["reason"]
    assert failed.get("step", 0) == 0


def test_the_kohya_layout_applies_to_bfl_weights_as_the_trainer_trained(flux_model, tmp_path: Path) -> None:
    """flux.lora_layout = "kohya": BFL names with fused q/k/v and linear1 (parts not adapted are zero rows),
    the final adaLN's halves swapped. Applied to the BFL-layout base as ComfyUI applies a kohya LoRA
    (W += alpha / rank * up @ down) and mapped back to diffusers' names, it gives the trainer's transformer."""
    from diffusers import FluxPipeline
    from safetensors.torch import load_file

    from tuitrain.trainer.export.naming import clip_path, kohya_name
    from tuitrain.trainer.families.flux.layout import from_bfl, to_bfl

    model = flux_model("dev")
    data = make_dataset(tmp_path / "data", count=2)
    # Some of each fused group, plus the one-to-one layers BFL renames (and the swapped final adaLN).
    targets = ["attn.to_q", "attn.to_v", "attn.add_k_proj", "proj_mlp", "norm1.linear", "norm.linear",
               "norm_out.linear", "x_embedder", "proj_out", "ff.net.2"]
    run = new_run("k", model, data, *TINY_SETS, "training.epochs=2", "lora.alpha=4", "flux.lora_layout=kohya",
                  "lora.train_text_encoder=true", f"lora.target_modules={targets!r}", preset="flux-dev-lora",
                  where=tmp_path)
    config = load_config(run.config)
    assert train(run) == 0, events(run)[-1]
    file = run.output / "k.safetensors"
    tensors = load_file(file)
    with safe_open(file, "pt") as f:
        assert f.metadata()["ss_network_module"] == "networks.lora_flux"
    names = {k.rsplit(".", 2)[0] if k.endswith(".weight") else k.rsplit(".", 1)[0] for k in tensors}
    assert {"lora_unet_double_blocks_0_img_attn_qkv", "lora_unet_double_blocks_0_txt_attn_qkv",
            "lora_unet_single_blocks_0_linear1", "lora_unet_final_layer_adaLN_modulation_1", "lora_unet_img_in",
            "lora_unet_final_layer_linear", "lora_unet_single_blocks_0_linear2"} <= names
    assert any(n.startswith("lora_te1_text_model_encoder_layers_0_") for n in names)
    qkv = tensors["lora_unet_double_blocks_0_img_attn_qkv.lora_up.weight"]
    width = qkv.shape[0] // 3
    assert not qkv[width: 2 * width].any()  # k was not adapted: its rows are zero

    base = FluxPipeline.from_pretrained(str(model), local_files_only=True)
    bfl = to_bfl(base.transformer.state_dict())
    by_name = {kohya_name("lora_unet", key.removesuffix(".weight")): key for key in bfl if key.endswith(".weight")}
    applied = 0
    for name in sorted(n for n in names if n.startswith("lora_unet_")):
        down, up = tensors[f"{name}.lora_down.weight"].float(), tensors[f"{name}.lora_up.weight"].float()
        alpha = float(tensors[f"{name}.alpha"])
        key = by_name[name]  # every module the file names exists in BFL's layout
        bfl[key] = bfl[key] + alpha / down.shape[0] * (up @ down)
        applied += 1
    assert applied == len([n for n in names if n.startswith("lora_unet_")])
    merged = FluxPipeline.from_pretrained(str(model), local_files_only=True)
    merged.transformer.load_state_dict(from_bfl(bfl))
    clip = {kohya_name("lora_te1", clip_path(path)): m for path, m in merged.text_encoder.named_modules()
            if isinstance(m, torch.nn.Linear)}
    with torch.no_grad():
        for name in (n for n in names if n.startswith("lora_te1_")):
            down, up = tensors[f"{name}.lora_down.weight"].float(), tensors[f"{name}.lora_up.weight"].float()
            clip[name].weight += float(tensors[f"{name}.alpha"]) / down.shape[0] * (up @ down)

    adapter = get_adapter("flux")
    adapter.configure(config)
    mine = FluxPipeline.from_pretrained(str(model), local_files_only=True)
    adapter_from_backup(run, config, adapter, mine.transformer, [mine.text_encoder])
    plain = denoiser_output(adapter, FluxPipeline.from_pretrained(str(model), local_files_only=True))
    trained, from_file = denoiser_output(adapter, mine), denoiser_output(adapter, merged)
    assert (trained - plain).abs().max() > 1e-3
    torch.testing.assert_close(from_file, trained, rtol=1e-3, atol=5e-5)


def test_the_t5_attention_mask_hides_padding_in_training_and_in_samples(flux_model, tmp_path: Path) -> None:
    """flux.t5_attention_mask: the transformer's output no longer depends on what T5 put at padding positions
    (without it, it does); a run trains and samples with it, its text cached apart from unmasked runs'."""
    from diffusers import FluxPipeline

    model = flux_model("dev")
    pipe = FluxPipeline.from_pretrained(str(model), local_files_only=True)
    adapter = get_adapter("flux")
    adapter.configure(parse_config({"model": {"family": "flux"}, "flux": {"t5_attention_mask": True}}))
    parts = adapter.parts(pipe, "auto")
    conditioning = adapter.encode_text(parts, [CAPTION])
    mask = conditioning["t5_mask"]
    assert 0 < int(mask.sum()) < mask.shape[1]  # some caption tokens, then padding

    latents = torch.randn(1, 16, 8, 8, generator=torch.Generator().manual_seed(0))
    padded = dict(conditioning)
    noise = torch.randn(conditioning["hidden"].shape, generator=torch.Generator().manual_seed(1))
    padded["hidden"] = torch.where(mask.bool()[..., None], conditioning["hidden"], noise)
    with torch.no_grad():
        out = [adapter.predict(parts, latents, torch.tensor([500.0]), LatentBatch(latents, c))
               for c in (conditioning, padded)]
        unmasked = [adapter.predict(parts, latents, torch.tensor([500.0]),
                                    LatentBatch(latents, {k: v for k, v in c.items() if k != "t5_mask"}))
                    for c in (conditioning, padded)]
    torch.testing.assert_close(out[0], out[1], rtol=0, atol=1e-6)
    assert (unmasked[0] - unmasked[1]).abs().max() > 1e-3

    data = make_dataset(tmp_path / "data", count=2)
    sampling = ("sampling.before_training=true", "sampling.steps=2", "sampling.prompts=[{prompt = 'a red square'}]")
    run = new_run("m", model, data, *TINY_SETS, "training.epochs=1", "flux.t5_attention_mask=true", *sampling,
                  preset="flux-dev-lora", where=tmp_path)
    assert train(run) == 0, events(run)[-1]
    assert events(run, "sample")
    assert adapter.text_settings(parts).endswith(" masked")


def test_true_cfg_samples_with_a_negative_pass(flux_model) -> None:
    """flux.true_cfg > 1 draws with FluxPipeline's real CFG (a negative-prompt pass): a different image than
    guidance-embedding-only sampling from the same seed; 1 leaves the pipeline's arguments as they were."""
    import numpy as np
    from diffusers import FluxPipeline

    pipe = FluxPipeline.from_pretrained(str(flux_model("dev")), local_files_only=True)
    prompt = {"prompt": CAPTION, "negative_prompt": "", "steps": 2, "cfg": 3.5, "width": 64, "height": 64}
    images = []
    for true_cfg in (1.0, 4.0):
        adapter = get_adapter("flux")
        adapter.configure(parse_config({"model": {"family": "flux"}, "flux": {"true_cfg": true_cfg}}))
        inputs = adapter.sample_inputs(adapter.parts(pipe, "auto"), prompt)
        assert ("true_cfg_scale" in inputs) == (true_cfg > 1)
        out = pipe(**inputs, generator=torch.Generator().manual_seed(0), output_type="np").images[0]
        images.append(np.asarray(out))
    assert np.abs(images[0] - images[1]).max() > 1e-3
    with pytest.raises(ConfigError, match="flux.true_cfg: 4 samples a negative prompt too"):
        parse_config({"model": {"family": "flux"}, "flux": {"true_cfg": 4.0, "t5_attention_mask": True}})


def test_an_assistant_lora_trains_under_the_lora_but_not_in_samples_or_files(flux_model, tmp_path: Path) -> None:
    """lora.assistant_lora (a schnell training adapter): active in the training steps (the trained LoRA comes out
    different), scaled to 0 in samples (the baseline sample equals a run's without it) and never saved (the
    file has the same keys, none of the assistant's)."""
    import numpy as np
    from safetensors.torch import save_file

    model = flux_model("schnell")
    gen = torch.Generator().manual_seed(5)
    assistant = {f"transformer.transformer_blocks.0.attn.{name}.lora_{ab}.weight": torch.randn(shape, generator=gen)
                 for name in ("to_q", "to_v", "to_out.0")
                 for ab, shape in (("A", (4, 32)), ("B", (32, 4)))}
    save_file(assistant, tmp_path / "assistant.safetensors")
    data = make_dataset(tmp_path / "data", count=2)
    sampling = ("sampling.before_training=true", "sampling.steps=2", "sampling.prompts=[{prompt = 'a red square'}]")
    runs = {}
    for name, extra in (("plain", ()), ("helped", ("lora.assistant_lora=../assistant.safetensors",))):
        runs[name] = new_run(name, model, data, *TINY_SETS, "training.epochs=2", "model.flavour=schnell", *sampling,
                             *extra, preset="flux-schnell-lora", where=tmp_path)
        assert train(runs[name]) == 0, events(runs[name])[-1]
    files = {name: load_file_of(run.output / f"{name}.safetensors") for name, run in runs.items()}
    assert files["plain"].keys() == files["helped"].keys()
    assert any(not torch.allclose(files["plain"][k], files["helped"][k]) for k in files["plain"])
    first = {name: np.asarray(Image.open(events(run, "sample")[0]["path"])) for name, run in runs.items()}
    assert np.array_equal(first["plain"], first["helped"])

    missing = new_run("m", model, data, *TINY_SETS, "lora.assistant_lora=nowhere.safetensors", preset="flux-schnell-lora",
                      where=tmp_path)
    assert train(missing) == 1
    assert events(missing, "finished")[-1]["reason"].startswith("lora.assistant_lora: ")
    with pytest.raises(ConfigError, match="lora.assistant_lora: a fine-tune trains the base weights"):
        parse_config({"training": {"method": "finetune"}, "lora": {"assistant_lora": "a.safetensors"}})


def load_file_of(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(path)


def test_the_lokr_preset_trains_whole_kronecker_factors_and_learns(flux_model, tmp_path: Path) -> None:
    """flux-dev-lokr: LyCORIS's full-dimension LoKr (whole w1 and w2, no low-rank split, scale 1) learns."""
    from diffusers import FluxPipeline
    from safetensors.torch import load_file

    model = flux_model("dev")
    data = make_dataset(tmp_path / "data", count=2)
    sets = [s for s in TINY_SETS if not s.startswith(("lora.rank", "lora.alpha", "training.learning_rate"))]
    run = new_run("k", model, data, *sets, "training.learning_rate=1e-2", preset="flux-dev-lokr", where=tmp_path)
    config = load_config(run.config)
    assert (config.lora.type, config.lora.lokr_factor, config.lora.rank) == ("lokr", 16, 1024)
    assert train(run) == 0, events(run)[-1]
    tensors = load_file(run.output / "k.safetensors")
    assert any(k.endswith(".lokr_w2") for k in tensors) and not any(k.endswith((".lokr_w2_a", ".lokr_w1_a"))
                                                                     for k in tensors)

    pipe = FluxPipeline.from_pretrained(str(model), local_files_only=True)
    before = eval_loss(pipe, config, data)
    adapter = get_adapter("flux")
    adapter.configure(config)
    from tests.trainer.test_lycoris import by_module, formula_delta

    modules = {name.replace(".", "_"): m for name, m in pipe.transformer.named_modules()
               if isinstance(m, torch.nn.Linear)}
    with torch.no_grad():
        for name, parts in by_module(tensors).items():
            weight = modules[name.removeprefix("lycoris_")].weight
            weight += formula_delta(parts, weight.shape)
    after = eval_loss(pipe, config, data)
    assert after < 0.9 * before, (before, after)
