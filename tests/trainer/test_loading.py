"""Loading model.base offline: diffusers folders, single .safetensors files, and every mistake named.

Tiny SD 1.x / 2.x / SDXL models are saved as diffusers folders, written as original-
layout single files by save_single_file and loaded back through load_pipeline (and
through diffusers' own from_single_file); every weight must come back bit-exact. The
public configs shipped for single files are checked against the public architectures
(parameter counts, the hub's own file hashes, the CLIP vocabulary), and each input a
user can get wrong must raise ModelLoadError naming the key and the file.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from diffusers import AutoencoderKL, StableDiffusionPipeline, StableDiffusionXLPipeline, UNet2DConditionModel
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from tuitrain.trainer.export.single_file import save_single_file, to_ldm_state_dict
from tuitrain.trainer.loading import ModelLoadError, load_pipeline, shipped_config_dir
from tuitrain.trainer.loading.layout import vae_to_ldm
from tuitrain.trainer.tiny import tiny_vae

FAMILIES = ("sd15", "sd2", "sdxl")
PIPELINES = {"sd15": StableDiffusionPipeline, "sd2": StableDiffusionPipeline, "sdxl": StableDiffusionXLPipeline}
PREDICTION = {"sd15": "epsilon", "sd2": "v_prediction", "sdxl": "epsilon"}
SD_EXTRAS = {"safety_checker": None, "feature_extractor": None, "requires_safety_checker": False}


def settings(base: Any, **over: str) -> SimpleNamespace:
    """The model section as load_pipeline reads it (ModelSection's fields)."""
    values = {"base": str(base), "vae": "", "variant": "", "prediction": "auto", "config": ""}
    values.update(over)
    return SimpleNamespace(**values)


def components(pipe: Any) -> dict[str, torch.nn.Module]:
    names = ["unet", "vae", "text_encoder", "text_encoder_2"]
    return {n: getattr(pipe, n) for n in names if isinstance(getattr(pipe, n, None), torch.nn.Module)}


def assert_same_weights(got: Any, want: Any) -> None:
    mine, theirs = components(got), components(want)
    assert mine.keys() == theirs.keys()
    for name in theirs:
        a, b = mine[name].state_dict(), theirs[name].state_dict()
        assert a.keys() == b.keys(), name
        differ = [k for k in b if a[k].dtype != b[k].dtype or not torch.equal(a[k], b[k])]
        assert not differ, f"{name}: {differ[:3]}"


@pytest.fixture(scope="module")
def exported(tiny_model, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Any, Path]]:
    """family -> (tiny diffusers folder, its pipeline, its single-file export)."""
    out_dir = tmp_path_factory.mktemp("single-files")
    made = {}
    for family in FAMILIES:
        folder = tiny_model(family)
        extra = SD_EXTRAS if family != "sdxl" else {}
        pipe = PIPELINES[family].from_pretrained(folder, local_files_only=True, **extra)
        made[family] = (folder, pipe, save_single_file(pipe, family, out_dir / f"{family}.safetensors"))
    return made


def expect_error(model: SimpleNamespace, family: str, config_dir: Path, *parts: str) -> str:
    with pytest.raises(ModelLoadError) as caught:
        load_pipeline(model, family, config_dir=config_dir)
    message = str(caught.value)
    for part in parts:
        assert part in message, message
    return message


# ------------------------------------------------------------------ round trips


@pytest.mark.parametrize("family", FAMILIES)
def test_single_file_round_trip_is_exact(family: str, exported, tmp_path: Path) -> None:
    folder, pipe, file = exported[family]
    # Relative paths start at the config file's folder.
    rel_base, rel_config = os.path.relpath(file, tmp_path), os.path.relpath(folder, tmp_path)
    loaded = load_pipeline(settings(rel_base, config=rel_config), family, config_dir=tmp_path)
    assert type(loaded) is PIPELINES[family]
    assert loaded.scheduler.config.prediction_type == PREDICTION[family]
    assert_same_weights(loaded, pipe)
    assert loaded.tokenizer("a cat").input_ids == pipe.tokenizer("a cat").input_ids


@pytest.mark.parametrize("family", FAMILIES)
def test_diffusers_folder_loads(family: str, exported, tmp_path: Path) -> None:
    folder, pipe, _ = exported[family]
    loaded = load_pipeline(settings(folder), family, config_dir=tmp_path)
    assert type(loaded) is PIPELINES[family]
    assert loaded.scheduler.config.prediction_type == PREDICTION[family]
    assert_same_weights(loaded, pipe)


@pytest.mark.parametrize("family", FAMILIES)
def test_diffusers_own_loader_reads_the_export(family: str, exported) -> None:
    folder, pipe, file = exported[family]
    # diffusers picks SDXL's second encoder by width, equal in the tiny model: hand it over.
    extra = SD_EXTRAS if family != "sdxl" else {"text_encoder_2": pipe.text_encoder_2}
    theirs = PIPELINES[family].from_single_file(str(file), config=str(folder), local_files_only=True, **extra)
    assert_same_weights(theirs, pipe)
    if family == "sdxl":  # the second encoder through diffusers' own OpenCLIP converter
        from diffusers.loaders.single_file_utils import convert_open_clip_checkpoint

        back = convert_open_clip_checkpoint(pipe.text_encoder_2, load_file(str(file)), "conditioner.embedders.1.model.")
        want = pipe.text_encoder_2.state_dict()
        assert back.keys() == want.keys()
        assert all(torch.equal(back[k], want[k]) for k in want)


def test_export_header_and_atomic_replace(exported, tmp_path: Path) -> None:
    _, pipe, _ = exported["sd2"]
    target = tmp_path / "model.safetensors"
    target.write_bytes(b"old")
    save_single_file(pipe, "sd2", target, dtype=torch.float16)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]  # no temp file left
    with safe_open(str(target), "pt") as handle:
        meta = handle.metadata()
        keys = set(handle.keys())
        assert handle.get_tensor("model.diffusion_model.input_blocks.0.0.weight").dtype == torch.float16
    assert meta["modelspec.architecture"] == "stable-diffusion-v2-768-v"
    assert meta["modelspec.prediction_type"] == "v"
    assert "cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight" in keys
    assert "cond_stage_model.model.positional_embedding" in keys
    assert "first_stage_model.encoder.mid.attn_1.q.weight" in keys

    with pytest.raises(ValueError):
        save_single_file(pipe, "flux", target)
    assert target.stat().st_size > 1000 and sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]


# ------------------------------------------------------------------ full-size architectures


def public_parts(family: str) -> SimpleNamespace:
    """The public architecture of `family` from the shipped configs, on the meta device (no memory)."""
    import transformers
    from accelerate import init_empty_weights

    folder = shipped_config_dir(family)
    parts: dict[str, Any] = {"folder": folder}
    with init_empty_weights():
        parts["unet"] = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(folder, subfolder="unet"))
        parts["vae"] = AutoencoderKL.from_config(AutoencoderKL.load_config(folder, subfolder="vae"))
        index = json.loads((folder / "model_index.json").read_text())
        for name in ("text_encoder", "text_encoder_2"):
            if name in index:
                config = transformers.CLIPTextConfig.from_pretrained(folder / name)
                parts[name] = getattr(transformers, index[name][1])(config)
    return SimpleNamespace(**parts)


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# Published parameter counts of the public models (UNet, VAE, text encoders).
PUBLIC_COUNTS = {
    "sd15": (859_520_964, 83_653_863, [123_060_480]),
    "sd2": (865_910_724, 83_653_863, [340_387_840]),
    "sdxl": (2_567_463_684, 83_653_863, [123_060_480, 694_659_840]),
}
CLIP_CAT_IDS = [49406, 320, 1125, 539, 320, 2368, 49407]  # "a photo of a cat", OpenAI CLIP BPE


@pytest.mark.parametrize("family", FAMILIES)
def test_shipped_configs_are_the_public_models(family: str) -> None:
    from transformers import CLIPTokenizer

    parts = public_parts(family)
    unet_count, vae_count, text_counts = PUBLIC_COUNTS[family]
    assert n_params(parts.unet) == unet_count
    assert n_params(parts.vae) == vae_count
    encoders = [parts.text_encoder] + ([parts.text_encoder_2] if family == "sdxl" else [])
    assert [n_params(e) for e in encoders] == text_counts
    scheduler = json.loads((parts.folder / "scheduler" / "scheduler_config.json").read_text())
    assert scheduler["prediction_type"] == PREDICTION[family]
    # SD 1.x pads prompts with the end token, OpenCLIP-based encoders (SD 2.x, SDXL's second) with '!' (id 0).
    pads = {"sd15": [49407], "sd2": [0], "sdxl": [49407, 0]}[family]
    for name, pad in zip(("tokenizer", "tokenizer_2"), pads):
        tokenizer = CLIPTokenizer.from_pretrained(parts.folder, subfolder=name, local_files_only=True)
        assert len(tokenizer) == 49408
        assert tokenizer("a photo of a cat").input_ids == CLIP_CAT_IDS
        padded = tokenizer("a photo of a cat", padding="max_length", max_length=77).input_ids
        assert len(padded) == 77 and padded[-1] == pad


def test_shipped_sdxl_configs_are_byte_identical_to_the_hub() -> None:
    # sha256 of the hub files, from the git-lfs pointers of a mirror of stabilityai/stable-diffusion-xl-base-1.0.
    hub = {
        "model_index.json": "a40ca00944bb33ea9281580f50d009d1e23a434173c0e4e234bb90bd75178874",
        "unet/config.json": "30ebc70750223e59006f7f2b4e1e6c102570aa19a9c4ae3e1fbe7591332dbae6",
        "text_encoder/config.json": "39b8b2e4b1949e36969caa425b6c81c68bace99198dd9078ce05d16ad401fe7f",
    }
    folder = shipped_config_dir("sdxl")
    for name, digest in hub.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name


@pytest.mark.parametrize(("family", "model_type"), [("sd15", "v1"), ("sd2", "v2"), ("sdxl", "xl_base")])
def test_full_size_export_is_what_diffusers_expects(family: str, model_type: str) -> None:
    from diffusers.loaders import single_file_utils as sfu

    parts = public_parts(family)
    state = to_ldm_state_dict(parts, family)  # meta tensors: names and shapes only
    assert sfu.infer_diffusers_model_type(state) == model_type
    for name, convert in (("unet", sfu.convert_ldm_unet_checkpoint), ("vae", sfu.convert_ldm_vae_checkpoint)):
        module = getattr(parts, name)
        back = convert(state, dict(module.config))
        want = {k: tuple(v.shape) for k, v in module.state_dict().items()}
        assert {k: tuple(v.shape) for k, v in back.items()} == want, name
    encoder = parts.text_encoder
    if family == "sd2":
        back = sfu.convert_open_clip_checkpoint(encoder, state, prefix="cond_stage_model.model.")
    else:
        back = sfu.convert_ldm_clip_checkpoint(state)
    want = {k.removeprefix("text_model."): tuple(v.shape) for k, v in encoder.state_dict().items()}
    assert {k.removeprefix("text_model."): tuple(v.shape) for k, v in back.items()} == want


# Names and shapes found in the released checkpoints (v1-5-pruned-emaonly, v2-1_768-ema-pruned,
# sd_xl_base_1.0). diffusers' converter also accepts some other names (an upsampler at slot 1
# after an attention), A1111 and ComfyUI do not: the export must write these.
CANONICAL = {
    "sd15": {
        "model.diffusion_model.output_blocks.2.1.conv.weight": (1280, 1280, 3, 3),
        "model.diffusion_model.output_blocks.5.2.conv.weight": (1280, 1280, 3, 3),
        "model.diffusion_model.output_blocks.8.2.conv.weight": (640, 640, 3, 3),
        "model.diffusion_model.input_blocks.9.0.op.weight": (1280, 1280, 3, 3),
        "model.diffusion_model.input_blocks.1.1.proj_in.weight": (320, 320, 1, 1),
        "model.diffusion_model.middle_block.2.emb_layers.1.weight": (1280, 1280),
        "model.diffusion_model.out.2.weight": (4, 320, 3, 3),
        "first_stage_model.decoder.up.3.upsample.conv.weight": (512, 512, 3, 3),
        "first_stage_model.encoder.down.1.block.0.nin_shortcut.weight": (256, 128, 1, 1),
        "first_stage_model.decoder.mid.attn_1.proj_out.weight": (512, 512, 1, 1),
        "cond_stage_model.transformer.text_model.encoder.layers.11.self_attn.q_proj.weight": (768, 768),
        "cond_stage_model.transformer.text_model.final_layer_norm.weight": (768,),
    },
    "sd2": {
        "model.diffusion_model.input_blocks.1.1.proj_in.weight": (320, 320),
        "model.diffusion_model.input_blocks.2.1.transformer_blocks.0.attn2.to_k.weight": (320, 1024),
        "cond_stage_model.model.transformer.resblocks.22.attn.in_proj_weight": (3072, 1024),
        "cond_stage_model.model.transformer.resblocks.0.mlp.c_fc.weight": (4096, 1024),
        "cond_stage_model.model.positional_embedding": (77, 1024),
        "cond_stage_model.model.ln_final.bias": (1024,),
    },
    "sdxl": {
        "model.diffusion_model.label_emb.0.0.weight": (1280, 2816),
        "model.diffusion_model.output_blocks.2.2.conv.weight": (1280, 1280, 3, 3),
        "model.diffusion_model.output_blocks.5.2.conv.weight": (640, 640, 3, 3),
        "model.diffusion_model.input_blocks.6.0.op.weight": (640, 640, 3, 3),
        "model.diffusion_model.input_blocks.7.1.transformer_blocks.9.attn2.to_k.weight": (1280, 2048),
        "model.diffusion_model.middle_block.1.transformer_blocks.9.ff.net.2.weight": (1280, 5120),
        "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight": (49408, 768),
        "conditioner.embedders.1.model.text_projection": (1280, 1280),
        "conditioner.embedders.1.model.transformer.resblocks.31.attn.out_proj.weight": (1280, 1280),
    },
}


@pytest.mark.parametrize("family", FAMILIES)
def test_full_size_export_uses_the_released_names(family: str) -> None:
    state = to_ldm_state_dict(public_parts(family), family)
    for key, shape in CANONICAL[family].items():
        assert key in state, key
        assert tuple(state[key].shape) == shape, key


@pytest.mark.parametrize("family", FAMILIES)
def test_tiny_file_with_shipped_configs_names_the_shape_mismatch(family: str, exported, tmp_path: Path) -> None:
    _, _, file = exported[family]
    expect_error(
        settings(file), family, tmp_path,
        f"model.base: '{file}' does not fit the architecture in",
        "unet/config.json", "'model.diffusion_model.input_blocks.0.0.weight' has shape [32, 4, 3, 3] in the file",
        "the config expects [320, 4, 3, 3]",
    )


# ------------------------------------------------------------------ options


def test_prediction_override(exported, tmp_path: Path) -> None:
    folder, _, file = exported["sd2"]
    loaded = load_pipeline(settings(file, config=str(folder), prediction="epsilon"), "sd2", config_dir=tmp_path)
    assert loaded.scheduler.config.prediction_type == "epsilon"
    folder, _, _ = exported["sd15"]
    loaded = load_pipeline(settings(folder, prediction="v_prediction"), "sd15", config_dir=tmp_path)
    assert loaded.scheduler.config.prediction_type == "v_prediction"


def test_separate_vae_as_single_file_and_folder(exported, tmp_path: Path) -> None:
    folder, pipe, file = exported["sdxl"]
    torch.manual_seed(7)
    other = tiny_vae()
    vae_file = tmp_path / "vae.safetensors"  # a standalone VAE file: LDM names without a prefix
    save_file({k.removeprefix("first_stage_model."): v.contiguous() for k, v in vae_to_ldm(
        other.state_dict(), other.config).items()}, str(vae_file))
    other.save_pretrained(tmp_path / "vae-folder")
    want = other.state_dict()
    for vae in ("vae.safetensors", "vae-folder"):
        loaded = load_pipeline(settings(file, config=str(folder), vae=vae), "sdxl", config_dir=tmp_path)
        got = loaded.vae.state_dict()
        assert all(torch.equal(got[k], want[k]) for k in want), vae
        assert torch.equal(loaded.unet.conv_in.weight, pipe.unet.conv_in.weight)
    # A checkpoint without VAE weights loads when model.vae supplies one, and is refused without.
    no_vae = tmp_path / "no-vae.safetensors"
    save_file({k: v for k, v in load_file(str(file)).items() if not k.startswith("first_stage_model.")}, str(no_vae))
    loaded = load_pipeline(settings(no_vae, config=str(folder), vae="vae-folder"), "sdxl", config_dir=tmp_path)
    assert torch.equal(loaded.vae.encoder.conv_in.weight, want["encoder.conv_in.weight"])
    expect_error(settings(no_vae, config=str(folder)), "sdxl", tmp_path, str(no_vae), "no VAE weights", "model.vae")


# ------------------------------------------------------------------ mistakes, each named


def write_tensors(path: Path, names: list[str]) -> Path:
    save_file({name: torch.zeros(2, 2) for name in names}, str(path))
    return path


@pytest.mark.parametrize(
    ("names", "words"),
    [
        (["lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight"], "is a LoRA"),
        (["unet.down_blocks.0.attentions.0.to_q.lora_A.weight"], "is a LoRA"),
        (["encoder.conv_in.weight", "decoder.conv_out.weight"], "is a VAE"),
        (["emb_params"], "textual-inversion embedding"),
        (["conv_in.weight", "time_embedding.linear_1.weight", "down_blocks.0.resnets.0.conv1.weight"],
         "diffusers UNet weights file"),
        (["some.weight"], "no UNet weights ('model.diffusion_model.*')"),
    ],
)
def test_wrong_kind_of_file_as_base(names: list[str], words: str, tmp_path: Path) -> None:
    file = write_tensors(tmp_path / "wrong.safetensors", names)
    expect_error(settings("wrong.safetensors"), "sd15", tmp_path, "model.base:", str(file), words)


def test_checkpoint_of_another_family(exported, tmp_path: Path) -> None:
    expect_error(settings(exported["sdxl"][2]), "sd15", tmp_path,
                 str(exported["sdxl"][2]), "looks like an SDXL checkpoint", "set model.family = 'sdxl'")
    expect_error(settings(exported["sd15"][2]), "sdxl", tmp_path,
                 str(exported["sd15"][2]), "looks like an SD 1.x checkpoint", "set model.family = 'sd15'")
    expect_error(settings(exported["sd2"][2]), "sd15", tmp_path, "looks like an SD 2.x checkpoint", "'sd2'")
    # Folders are checked by their model_index.json the same way.
    expect_error(settings(exported["sdxl"][0]), "sd2", tmp_path,
                 str(exported["sdxl"][0]), "looks like an SDXL model", "set model.family = 'sdxl'")


def test_missing_paths(tmp_path: Path) -> None:
    expect_error(settings("models/nothing.safetensors"), "sd15", tmp_path,
                 f"model.base: file or folder not found: '{tmp_path / 'models/nothing.safetensors'}'",
                 "relative paths start at the config file's folder")
    expect_error(settings(""), "sd15", tmp_path, "model.base: not set")
    expect_error(settings(tmp_path / "x.safetensors"), "no-such-family", tmp_path, "model.family")


def test_folder_without_model_index(tmp_path: Path) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    write_tensors(folder / "mine.safetensors", ["a"])
    expect_error(settings("models"), "sd15", tmp_path,
                 f"model.base: '{folder}' is a folder without model_index.json", "mine.safetensors")


def test_pickle_checkpoint_is_refused_with_a_conversion(tmp_path: Path) -> None:
    ckpt = tmp_path / "old.ckpt"
    ckpt.write_bytes(b"\x80\x02}q\x00.")
    message = expect_error(settings("old.ckpt"), "sd15", tmp_path, f"'{ckpt}' is a pickle checkpoint",
                           "does not load pickle", "weights_only=True", str(tmp_path / "old.safetensors"))
    assert "torch.load" in message
    renamed = tmp_path / "renamed.safetensors"  # a torch.save zip with a new name
    renamed.write_bytes(b"PK\x03\x04" + b"\x00" * 200)
    expect_error(settings(renamed), "sd15", tmp_path, str(renamed), "pickle (torch.save) file")
    legacy = tmp_path / "legacy.safetensors"  # torch.save(..., _use_new_zipfile_serialization=False): a bare pickle
    legacy.write_bytes(b"\x80\x02\x8a\x0alfc" + b"\x00" * 200)
    expect_error(settings(legacy), "sd15", tmp_path, str(legacy), "pickle (torch.save) file")
    noise = tmp_path / "noise.safetensors"  # 0x80 first, but no pickle protocol after it: just not safetensors
    noise.write_bytes(b"\x80\xf3" + bytes(range(256)) * 4)
    expect_error(settings(noise), "sd15", tmp_path, str(noise), "is not a valid .safetensors file")


def test_truncated_and_garbage_files(exported, tmp_path: Path) -> None:
    data = exported["sd15"][2].read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[: len(data) // 2])
    expect_error(settings(cut), "sd15", tmp_path, f"model.base: '{cut}' is truncated", "interrupted download")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(bytes(range(256)) * 8)
    expect_error(settings(junk), "sd15", tmp_path, f"'{junk}' is not a valid .safetensors file")
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    expect_error(settings(empty), "sd15", tmp_path, f"'{empty}' is empty or truncated")


def test_incomplete_checkpoint(exported, tmp_path: Path) -> None:
    folder, pipe, file = exported["sd15"]
    state = load_file(str(file))
    no_text = tmp_path / "no-text.safetensors"
    save_file({k: v for k, v in state.items() if not k.startswith("cond_stage_model.")}, str(no_text))
    expect_error(settings(no_text, config=str(folder)), "sd15", tmp_path, str(no_text),
                 "no text encoder weights ('cond_stage_model.transformer.*')")
    gap = tmp_path / "gap.safetensors"
    save_file({k: v for k, v in state.items() if "encoder.layers.1.mlp" not in k}, str(gap))
    expect_error(settings(gap, config=str(folder)), "sd15", tmp_path, str(gap),
                 "lacks 4 text encoder weights", "encoder.layers.1.mlp")
    no_mid = tmp_path / "no-mid.safetensors"
    save_file({k: v for k, v in state.items() if "middle_block.1." not in k}, str(no_mid))
    removed, total = sum("middle_block.1." in k for k in state), len(pipe.unet.state_dict())
    expect_error(settings(no_mid, config=str(folder)), "sd15", tmp_path, str(no_mid),
                 f"lacks {removed} of the {total} UNet weights", "'model.diffusion_model.middle_block.1.")


def test_wrong_model_config(exported, tmp_path: Path) -> None:
    _, _, file = exported["sd15"]
    expect_error(settings(file, config="nowhere"), "sd15", tmp_path,
                 f"model.config: folder not found: '{tmp_path / 'nowhere'}'")
    empty = tmp_path / "empty"
    empty.mkdir()
    expect_error(settings(file, config="empty"), "sd15", tmp_path, f"model.config: '{empty}' has no model_index.json")
    expect_error(settings(file, config=str(exported["sdxl"][0])), "sd15", tmp_path,
                 "model.config:", "describes a StableDiffusionXLPipeline", "model.family = 'sd15'")
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    expect_error(settings(file, config="partial"), "sd15", tmp_path, f"model.config: '{partial / 'unet' / 'config.json'}'")
    # An SD 2.x config folder (linear attention projections) does not describe an SD 1.x file.
    expect_error(settings(file, config=str(exported["sd2"][0])), "sd15", tmp_path,
                 f"model.base: '{file}' does not fit the architecture in", "proj_in.weight' has shape [32, 32, 1, 1]",
                 "the config expects [32, 32]", "model.config does not describe this checkpoint")


def test_file_that_safetensors_itself_refuses(exported, tmp_path: Path) -> None:
    folder, _, file = exported["sd15"]
    data = bytearray(file.read_bytes())
    length = int.from_bytes(data[:8], "little")
    header = data[8 : 8 + length].decode()
    key = '"model.diffusion_model.out.2.weight":{"dtype":"F32"'
    assert key in header
    # Same header length, but the byte range no longer matches the dtype: the header parses, the data does not.
    data[8 : 8 + length] = header.replace(key, key.replace("F32", "F16")).encode()
    odd = tmp_path / "odd.safetensors"
    odd.write_bytes(bytes(data))
    expect_error(settings(odd, config=str(folder)), "sd15", tmp_path,
                 f"model.base: '{odd}' could not be loaded with the configs in '{folder}'")


def test_bad_vae(exported, tmp_path: Path) -> None:
    folder, _, _ = exported["sd15"]
    lora = write_tensors(tmp_path / "lora.safetensors", ["lora_unet_x.lora_down.weight"])
    expect_error(settings(folder, vae="lora.safetensors"), "sd15", tmp_path, f"model.vae: '{lora}' is not a VAE")
    expect_error(settings(folder, vae="missing-vae"), "sd15", tmp_path, "model.vae: file or folder not found")
    expect_error(settings(folder, vae=str(folder / "unet")), "sd15", tmp_path,
                 f"model.vae: '{folder / 'unet' / 'config.json'}' describes a UNet2DConditionModel, not a VAE")
    broken = tmp_path / "broken-vae"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({"_class_name": "AutoencoderKL"}))
    expect_error(settings(folder, vae="broken-vae"), "sd15", tmp_path, f"model.vae: cannot load the VAE folder '{broken}'")


def test_variant_that_is_not_there(exported, tmp_path: Path) -> None:
    folder, _, _ = exported["sd15"]
    expect_error(settings(folder, variant="fp16"), "sd15", tmp_path,
                 f"model.base: cannot load the diffusers folder '{folder}'", "model.variant = 'fp16'")


def test_hub_id_offline(tmp_path: Path) -> None:
    expect_error(settings("someone/some-model"), "sdxl", tmp_path,
                 "model.base: 'someone/some-model' is not a local file or folder, the hub is off (HF_HUB_OFFLINE=1) "
                 "and it is not in the local hub cache; download it first or give a local path")
    expect_error(settings(tmp_path, vae="someone/some-vae"), "sdxl", tmp_path,
                 "model.vae: 'someone/some-vae' is not a local file or folder, the hub is off (HF_HUB_OFFLINE=1)")
