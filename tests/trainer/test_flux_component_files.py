"""FLUX.1 from the files ComfyUI users have: a BFL transformer file plus clip_l / t5xxl / ae files, or one
all-in-one checkpoint, loaded offline.

The tiny model's parts are written in those layouts and loaded through model.text_encoder / text_encoder_2 /
vae; the tiny architectures are not FLUX.1-dev's, so these runs name a folder of the tiny model's configs
(no weights in it) as model.config, for the widths only. With model.config empty the shipped FLUX.1-dev
configs are the architecture: checked here on the meta device (the published parameter counts, and the key
names of BFL's ae.safetensors through diffusers' own converter), and the tiny files are refused against
them in one line that names the shipped folder.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file

from tests.trainer.conftest import make_dataset
from tests.trainer.harness import assert_outputs_agree, assert_same_weights, events, new_run, train
from tests.trainer.test_flux import denoiser_output
from tuitrain.config import ConfigError, parse_config
from tuitrain.trainer.families import get_adapter
from tuitrain.trainer.loading.errors import ModelLoadError

FLUX_CONFIGS = Path(__file__).resolve().parents[2] / "tuitrain/trainer/families/flux/configs/flux"


def _ae_state(vae: Any) -> dict[str, torch.Tensor]:
    """The VAE in BFL's ae.safetensors names (the LDM names, no prefix; attention as 1x1 convolutions)."""
    from tuitrain.trainer.loading.header import VAE_PREFIX
    from tuitrain.trainer.loading.layout import vae_to_ldm

    ldm = vae_to_ldm(vae.state_dict(), dict(vae.config))
    return {k.removeprefix(VAE_PREFIX): v.contiguous() for k, v in ldm.items()}


def _t5_state(t5: Any) -> dict[str, torch.Tensor]:
    """T5EncoderModel's tensors as transformers saves them: the tied embedding once, as shared.weight."""
    return {k: v.contiguous() for k, v in t5.state_dict().items() if k != "encoder.embed_tokens.weight"}


@pytest.fixture(scope="module")
def comfy(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny FLUX.1-dev as a diffusers folder, its configs alone, and its parts as ComfyUI users' files."""
    from diffusers import FluxPipeline

    from tuitrain.trainer.families.flux.layout import to_bfl
    from tuitrain.trainer.tiny import save_tiny_model

    root = tmp_path_factory.mktemp("flux-comfy")
    model = save_tiny_model("flux", root / "model")
    pipe = FluxPipeline.from_pretrained(str(model), local_files_only=True)
    arch = root / "arch"  # the widths of the tiny parts, and nothing to load weights from
    shutil.copytree(model, arch, ignore=shutil.ignore_patterns("*.safetensors"))
    bfl = to_bfl(pipe.transformer.state_dict())
    transformer = {f"model.diffusion_model.{k}": v.contiguous() for k, v in bfl.items()}
    clip = {k: v.contiguous() for k, v in pipe.text_encoder.state_dict().items()}
    t5 = _t5_state(pipe.text_encoder_2)
    ae = _ae_state(pipe.vae)
    files = {"model": model, "arch": arch, "transformer": root / "flux1-dev.safetensors",
             "clip": root / "clip_l.safetensors", "t5": root / "t5xxl_fp16.safetensors", "ae": root / "ae.safetensors",
             "t5_fp8": root / "t5xxl_fp8_e4m3fn_scaled.safetensors", "aio": root / "flux1-dev-aio.safetensors"}
    save_file(transformer, files["transformer"])
    save_file(clip, files["clip"])
    save_file({k: v.to(torch.float16) for k, v in t5.items()}, files["t5"])
    save_file(ae, files["ae"])
    # ComfyUI's scaled fp8: each linear weight stored as w / s in float8, s beside it, and the marker tensor.
    scaled: dict[str, torch.Tensor] = {"scaled_fp8": torch.zeros(0, dtype=torch.float8_e4m3fn)}
    for key, value in t5.items():
        if key.endswith(".weight") and value.ndim == 2 and key != "shared.weight":
            scale = value.abs().max() / 448
            scaled[key] = (value / scale).to(torch.float8_e4m3fn)
            scaled[key.removesuffix(".weight") + ".scale_weight"] = scale.reshape(())
        else:
            scaled[key] = value
    save_file(scaled, files["t5_fp8"])
    # ComfyUI's CheckpointSave layout for Flux (supported_models.Flux: text_encoders. and vae. prefixes).
    aio = dict(transformer)
    aio.update({f"text_encoders.clip_l.transformer.{k}": v for k, v in clip.items()})
    aio.update({f"text_encoders.t5xxl.transformer.{k}": v for k, v in t5.items()})
    aio.update({f"vae.{k}": v for k, v in ae.items()})
    save_file(aio, files["aio"])
    return files


def _settings(comfy: dict[str, Path], **model: str) -> Any:
    return parse_config({"model": {"family": "flux", **model}}).model


def _separate(comfy: dict[str, Path], config: str | None = None) -> dict[str, str]:
    return {"base": str(comfy["transformer"]), "config": str(comfy["arch"]) if config is None else config,
            "text_encoder": str(comfy["clip"]), "text_encoder_2": str(comfy["t5"]), "vae": str(comfy["ae"])}


@torch.no_grad()
def _assert_same_model(loaded: Any, original: Any, t5_dtype: torch.dtype = torch.float16) -> None:
    """Each part holds the original's weights (T5 as rounded to `t5_dtype` in its file), and the family adapter's
    prediction for one caption (CLIP-L pooled + T5 tokens into the transformer) and the VAE's latents agree."""
    for name in ("transformer", "text_encoder", "vae"):
        assert_same_weights(getattr(loaded, name), getattr(original, name))
    t5, t5_original = loaded.text_encoder_2.state_dict(), original.text_encoder_2.state_dict()
    assert t5.keys() == t5_original.keys()
    assert all(torch.equal(t5[k], t5_original[k].to(t5_dtype).float()) for k in t5)
    assert loaded.text_encoder_2.shared.weight is loaded.text_encoder_2.encoder.embed_tokens.weight  # tied
    original.text_encoder_2.load_state_dict(t5)  # the file's rounding, so outputs compare exactly
    adapter = get_adapter("flux")
    assert_outputs_agree(denoiser_output(adapter, loaded), denoiser_output(adapter, original))
    pixels = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1)) * 2 - 1
    assert_outputs_agree(loaded.vae.encode(pixels).latent_dist.mean, original.vae.encode(pixels).latent_dist.mean)


def _original(comfy: dict[str, Path]) -> Any:
    from diffusers import FluxPipeline

    return FluxPipeline.from_pretrained(str(comfy["model"]), local_files_only=True)


def test_four_separate_files_load_as_the_model_they_were_written_from(comfy: dict[str, Path], tmp_path: Path) -> None:
    from tuitrain.trainer.loading import load_pipeline
    from tuitrain.trainer.loading.preflight import inspect_base

    model = _settings(comfy, **_separate(comfy))
    assert inspect_base(model, "flux", tmp_path).endswith(
        "CLIP-L from clip_l.safetensors, T5 from t5xxl_fp16.safetensors, VAE from model.vae")
    loaded = load_pipeline(model, "flux", config_dir=tmp_path)
    _assert_same_model(loaded, _original(comfy))
    # The files are part of the cache identity: cached text embeddings are theirs.
    adapter = get_adapter("flux")
    adapter.parts(loaded, "auto")
    assert f"+encoder:{comfy['t5'].resolve()}:" in adapter.cache_identity()


def test_an_all_in_one_checkpoint_loads_its_text_encoders_and_vae(comfy: dict[str, Path], tmp_path: Path) -> None:
    """ComfyUI's all-in-one Flux layout as model.base; a separate file named for a part still wins."""
    from tuitrain.trainer.loading import load_pipeline
    from tuitrain.trainer.loading.preflight import inspect_base

    model = _settings(comfy, base=str(comfy["aio"]), config=str(comfy["arch"]))
    assert inspect_base(model, "flux", tmp_path).endswith(
        "CLIP-L from the checkpoint, T5 from the checkpoint, VAE from the checkpoint")
    _assert_same_model(load_pipeline(model, "flux", config_dir=tmp_path), _original(comfy), t5_dtype=torch.float32)

    with_t5 = _settings(comfy, base=str(comfy["aio"]), config=str(comfy["arch"]), text_encoder_2=str(comfy["t5"]))
    _assert_same_model(load_pipeline(with_t5, "flux", config_dir=tmp_path), _original(comfy))


def test_a_scaled_fp8_t5_file_is_multiplied_back(comfy: dict[str, Path], tmp_path: Path) -> None:
    """t5xxl_fp8_e4m3fn_scaled: w8 * scale_weight, in the compute dtype, as ComfyUI computes the weight."""
    from safetensors.torch import load_file

    from tuitrain.trainer.loading.t5 import load_t5_encoder

    t5 = load_t5_encoder(comfy["t5_fp8"], "", comfy["arch"] / "text_encoder_2", torch.bfloat16)
    stored = load_file(comfy["t5_fp8"])
    key = "encoder.block.0.layer.0.SelfAttention.q.weight"
    want = stored[key].to(torch.bfloat16) * stored[key.removesuffix(".weight") + ".scale_weight"].to(torch.bfloat16)
    assert torch.equal(t5.state_dict()[key], want)
    original = _original(comfy).text_encoder_2.state_dict()[key].to(torch.bfloat16)
    assert 0 < (t5.state_dict()[key].float() - original.float()).abs().max() < 0.1 * original.float().abs().max()
    norm = "encoder.block.0.layer.0.layer_norm.weight"  # not quantized: as stored, cast
    assert torch.equal(t5.state_dict()[norm], stored[norm].to(torch.bfloat16))


def test_a_scaled_fp8_transformer_file_is_multiplied_back(comfy: dict[str, Path], tmp_path: Path) -> None:
    """flux1-dev in ComfyUI's scaled fp8 (fused qkv / linear1 scaled whole): each weight w8 * scale_weight."""
    from safetensors.torch import load_file

    from tuitrain.trainer.families.flux.layout import from_bfl
    from tuitrain.trainer.families.flux.loading import load_transformer

    bfl = load_file(comfy["transformer"])
    scaled: dict[str, torch.Tensor] = {"model.diffusion_model.scaled_fp8": torch.zeros(0, dtype=torch.float8_e4m3fn)}
    want: dict[str, torch.Tensor] = {}
    for key, value in bfl.items():
        if key.endswith(".weight") and value.ndim == 2:
            scale = value.abs().max() / 448
            scaled[key] = (value / scale).to(torch.float8_e4m3fn)
            scaled[key.removesuffix(".weight") + ".scale_weight"] = scale.reshape(())
            want[key] = scaled[key].float() * scale
        else:
            scaled[key] = want[key] = value
    save_file(scaled, tmp_path / "flux1-dev-fp8-scaled.safetensors")
    loaded = load_transformer(tmp_path / "flux1-dev-fp8-scaled.safetensors", comfy["arch"], torch.float32).state_dict()
    expected = from_bfl(want)
    assert loaded.keys() == expected.keys()
    assert all(torch.equal(loaded[k], expected[k]) for k in expected)
    q = "transformer_blocks.0.attn.to_q.weight"  # a slice of the fused qkv, scaled with it
    assert not torch.equal(loaded[q], from_bfl(bfl)[q]) and torch.allclose(loaded[q], from_bfl(bfl)[q], atol=0.05)


def test_tuitrain_new_and_train_with_the_four_files(comfy: dict[str, Path], tmp_path: Path) -> None:
    """The user's path: tuitrain new --base flux1-dev.safetensors --set model.text_encoder=... and train a step;
    model.config's folder holds no weights, so the run can only have trained on the files'."""
    data = make_dataset(tmp_path / "data", count=2)
    files = _separate(comfy)
    sets = [f"model.{key}={value}" for key, value in files.items() if key != "base"]
    run = new_run("c", comfy["transformer"], data, "data.resolution=64", "training.epochs=1",
                  "training.gradient_checkpointing=false", "sampling.every_epochs=0", "saving.every_epochs=0", *sets,
                  preset="flux-dev-lora", where=tmp_path)
    assert train(run) == 0, events(run)[-1]
    assert events(run, "started")[0]["family"] == "flux"
    steps = events(run, "step")
    assert steps and all(torch.isfinite(torch.tensor(e["loss"])) for e in steps), steps
    assert (run.output / "c.safetensors").is_file()


def test_with_model_config_empty_the_shipped_flux_dev_configs_are_the_architecture(comfy: dict[str, Path],
                                                                                     tmp_path: Path) -> None:
    """No model.config: nothing asks the hub; the tiny parts do not fit FLUX.1-dev's shipped configs and the
    messages name that folder; a part given nowhere names the key to set."""
    from tuitrain.trainer.loading import load_pipeline, shipped_config_dir
    from tuitrain.trainer.loading.preflight import inspect_base

    shipped = shipped_config_dir("flux")
    model = _settings(comfy, **_separate(comfy, config=""))
    assert "T5 from t5xxl_fp16.safetensors" in inspect_base(model, "flux", tmp_path)
    with pytest.raises(ModelLoadError, match=rf"^model\.vae: '.*ae\.safetensors' does not fit the architecture in "
                                             rf"{shipped}/vae/config\.json: 'encoder\.conv_in\.weight' has shape "
                                             r"\[8, 3, 3, 3\] in the file, the config expects \[128, 3, 3, 3\]"):
        load_pipeline(model, "flux", config_dir=tmp_path)
    aio = _settings(comfy, base=str(comfy["aio"]))
    with pytest.raises(ModelLoadError, match=r"^model\.base: '.*flux1-dev-aio\.safetensors' does not fit the "
                                             rf"transformer in '{shipped}/transformer'"):
        load_pipeline(aio, "flux", config_dir=tmp_path)

    no_t5 = _settings(comfy, base=str(comfy["transformer"]), text_encoder=str(comfy["clip"]), vae=str(comfy["ae"]))
    message = (r"^model\.text_encoder_2: not set, and the FLUX\.1 transformer file '.*flux1-dev\.safetensors' holds no "
               r"T5-XXL encoder; set model\.text_encoder_2 to it \(t5xxl_fp16\.safetensors\), or model\.config to a "
               r"FLUX\.1 diffusers folder to take it from$")
    with pytest.raises(ModelLoadError, match=message):
        inspect_base(no_t5, "flux", tmp_path)  # tuitrain check says it before anything loads
    with pytest.raises(ModelLoadError, match=message):
        load_pipeline(no_t5, "flux", config_dir=tmp_path)


def test_a_file_given_for_the_wrong_part_is_one_line(comfy: dict[str, Path], tmp_path: Path) -> None:
    from tuitrain.trainer.loading import load_pipeline

    swapped = _settings(comfy, **{**_separate(comfy), "text_encoder": str(comfy["t5"])})
    with pytest.raises(ModelLoadError, match=r"^model\.text_encoder: '.*t5xxl_fp16\.safetensors' is not a FLUX\.1 "
                                             r"CLIP-L text encoder file: it looks like the T5-XXL encoder, which goes "
                                             r"in model\.text_encoder_2; give clip_l\.safetensors"):
        load_pipeline(swapped, "flux", config_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"model\.text_encoder_2: only flux loads text encoders from their own files"):
        parse_config({"model": {"family": "sdxl", "text_encoder_2": str(comfy["t5"])}})


def test_a_diffusers_folder_takes_a_t5_file_in_place_of_its_own(comfy: dict[str, Path], tmp_path: Path) -> None:
    """model.text_encoder_2 beside a diffusers folder (an fp8 T5 in place of the folder's): the file's weights."""
    from tuitrain.trainer.loading import load_pipeline

    model = _settings(comfy, base=str(comfy["model"]), text_encoder_2=str(comfy["t5_fp8"]))
    loaded = load_pipeline(model, "flux", config_dir=tmp_path)
    key = "encoder.block.0.layer.0.SelfAttention.q.weight"
    original = _original(comfy).text_encoder_2.state_dict()[key]
    assert not torch.equal(loaded.text_encoder_2.state_dict()[key], original)  # the file's, fp8-rounded
    assert torch.allclose(loaded.text_encoder_2.state_dict()[key], original, atol=0.1 * original.abs().max().item())


def _meta_count(model: torch.nn.Module) -> int:
    """Parameters of a model built on the meta device, a tied tensor counted once (as it is in memory)."""
    if hasattr(model, "shared") and hasattr(model, "encoder"):
        model.encoder.embed_tokens = model.shared  # T5: what tie_weights does once the weights are real
    return sum(p.numel() for p in model.parameters())


def test_the_shipped_configs_build_the_published_models() -> None:
    """Parameter counts of the shipped FLUX.1-dev parts (meta device): T5-XXL v1.1 encoder 4,762,310,656 (SD3's
    text_encoder_3 and PixArt's T5 in published memory reports), CLIP ViT-L/14 text 123,060,480, the FLUX.1 VAE
    83,819,683 (244 tensors); the scheduler and VAE factors are FLUX.1-dev's."""
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    from tuitrain.trainer.loading import shipped_config_dir

    folder = shipped_config_dir("flux")
    with init_empty_weights():
        t5 = T5EncoderModel(T5Config.from_pretrained(str(folder / "text_encoder_2")))
        clip = CLIPTextModel(CLIPTextConfig.from_pretrained(str(folder / "text_encoder")))
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(str(folder / "vae")))
    assert _meta_count(t5) == 4_762_310_656
    assert _meta_count(clip) == 123_060_480
    assert _meta_count(vae) == 83_819_683 and len(vae.state_dict()) == 244
    assert t5.config.is_gated_act and t5.config.dense_act_fn == "gelu_new"  # v1.1's gated GELU
    assert (vae.config.latent_channels, vae.config.scaling_factor, vae.config.shift_factor) == (16, 0.3611, 0.1159)
    assert not vae.config.use_quant_conv and not vae.config.use_post_quant_conv
    scheduler = FlowMatchEulerDiscreteScheduler.from_pretrained(str(folder / "scheduler"))
    assert (scheduler.config.shift, scheduler.config.use_dynamic_shifting, scheduler.config.base_shift,
            scheduler.config.max_shift, scheduler.config.base_image_seq_len,
            scheduler.config.max_image_seq_len) == (3.0, True, 0.5, 1.15, 256, 4096)
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == "FluxPipeline" and index["tokenizer_2"] == ["transformers", "T5TokenizerFast"]
    # CLIP-L's config and tokenizer are SD 1.5's, shipped once.
    assert not (FLUX_CONFIGS / "text_encoder").exists() and not (FLUX_CONFIGS / "tokenizer").exists()


def test_the_shipped_vae_config_reads_bfl_ae_names_through_diffusers_converter() -> None:
    """Full size, meta device: ae.safetensors' names (the LDM layout, no quant_conv) fit the shipped config
    (checked from a header, as the loader checks a file) and diffusers' converter turns them into exactly the
    shipped architecture's weights."""
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

    from tuitrain.trainer.loading import shipped_config_dir
    from tuitrain.trainer.loading.checkpoint import check_fit
    from tuitrain.trainer.loading.header import SafetensorsHeader

    folder = shipped_config_dir("flux")
    config = AutoencoderKL.load_config(str(folder / "vae"))
    with init_empty_weights():
        vae = AutoencoderKL.from_config(config)
    ae = _ae_state(vae)
    assert not any("quant_conv" in k for k in ae) and "encoder.mid.attn_1.q.weight" in ae
    assert tuple(ae["encoder.mid.attn_1.q.weight"].shape) == (512, 512, 1, 1)  # BFL's 1x1 convolutions
    header = SafetensorsHeader(Path("ae.safetensors"), {k: tuple(v.shape) for k, v in ae.items()}, {})
    check_fit(header, folder, unet=False, vae=True, hint="", field="model.vae")
    converted = convert_ldm_vae_checkpoint(ae, config)
    expected = vae.state_dict()
    assert converted.keys() == expected.keys()
    assert all(tuple(converted[k].shape) == tuple(expected[k].shape) for k in expected)


def test_the_shipped_t5_tokenizer_gives_the_published_ids() -> None:
    """FLUX.1-dev's tokenizer_2 (the T5 v1.1 SentencePiece vocabulary): "a photo of a cat" -> 3 9 1202 13 3 9 1712
    </s> (two public T5 tokenizer test suites give these ids), transformers' own T5 test sentence -> its ids
    (tests/models/t5/test_tokenization_t5.py), and the 100 extra ids after the 32,000 pieces."""
    import gzip
    import hashlib

    from transformers import AutoTokenizer

    from tuitrain.trainer.loading import shipped_config_dir
    from tuitrain.trainer.loading.config_folders import T5_TOKENIZER_FILE

    unpacked = gzip.decompress(T5_TOKENIZER_FILE.read_bytes())  # the file configs/README.txt names
    assert hashlib.sha256(unpacked).hexdigest() == "6cd1badb7467cdab971403bbeb1945070ca385652385a2b6549f672b08089dfc"
    tokenizer = AutoTokenizer.from_pretrained(str(shipped_config_dir("flux") / "tokenizer_2"))
    assert type(tokenizer).__name__.startswith("T5Tokenizer") and len(tokenizer) == 32100
    assert tokenizer("a photo of a cat").input_ids == [3, 9, 1202, 13, 3, 9, 1712, 1]
    assert tokenizer("A long paragraph for summarization.").input_ids == [71, 307, 8986, 21, 4505, 1635, 1707, 5, 1]
    assert tokenizer.convert_tokens_to_ids(["<extra_id_0>", "<extra_id_99>"]) == [32099, 32000]
    assert (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.model_max_length) == (0, 1, 512)
    clip = AutoTokenizer.from_pretrained(str(shipped_config_dir("flux") / "tokenizer"))
    assert clip("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
