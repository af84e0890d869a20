"""LoRA through peft and its kohya export: what the trainer computes is what loaders compute.

Tiny SD 1.5 / SDXL models are built on disk; the trainer side injects LoRA, moves
every adapter weight off its (zero) initialisation and records UNet and text-encoder
outputs; a fresh pipeline loads the saved file with diffusers' own load_lora_weights
and must reproduce those outputs.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from diffusers import DiffusionPipeline
from safetensors import safe_open
from safetensors.torch import load_file

from tuitrain.config.schema import LoraSection
from tuitrain.trainer.export import atomic
from tuitrain.trainer.export.atomic import atomic_save_safetensors, atomic_write_bytes
from tuitrain.trainer.export.kohya_lora import save_diffusers_lora, save_kohya_lora
from tuitrain.trainer.export.metadata import lora_metadata
from tuitrain.trainer.export.naming import text_encoder_module_name, text_encoder_prefixes, unet_module_name
from tuitrain.trainer.methods.lora import inject_lora, load_lora_state
from tuitrain.trainer.methods.peft_layers import LoraHandles, lora_layers

# The family adapter's lists, as the SD/SDXL adapters will supply them.
ATTENTION = ["to_q", "to_k", "to_v", "to_out.0"]
FEED_FORWARD = ["ff.net.0.proj", "ff.net.2"]
CONV = ["conv1", "conv2", "conv_shortcut", "downsamplers.0.conv", "upsamplers.0.conv"]
TEXT = ["q_proj", "k_proj", "v_proj", "out_proj"]

RANK, ALPHA, CONV_RANK, CONV_ALPHA = 4, 2.5, 3, 5.0
TOL = {"atol": 1e-5, "rtol": 1e-5}


# ---------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def model_folders(tiny_model) -> dict[str, Path]:
    """The session's tiny models (conftest.tiny_model), built once for every trainer test."""
    return {family: tiny_model(family) for family in ("sd15", "sdxl")}


def load_pipe(folder: Path):  # type: ignore[no-untyped-def]
    pipe = DiffusionPipeline.from_pretrained(folder)
    for part in (pipe.unet, *text_encoders(pipe)):
        part.eval()
    return pipe


def text_encoders(pipe) -> list[torch.nn.Module]:  # type: ignore[no-untyped-def]
    return [te for te in (pipe.text_encoder, getattr(pipe, "text_encoder_2", None)) if te is not None]


def kohya_modules(pipe) -> dict[str, torch.nn.Module]:  # type: ignore[no-untyped-def]
    """Every Linear/Conv2d of a pipeline without adapters, by the kohya module name the export gives it."""
    layers = (torch.nn.Linear, torch.nn.Conv2d)
    named = {unet_module_name(pipe.unet, p): m for p, m in pipe.unet.named_modules() if isinstance(m, layers)}
    encoders = text_encoders(pipe)
    for prefix, te in zip(text_encoder_prefixes(len(encoders)), encoders):
        named.update({text_encoder_module_name(prefix, p): m for p, m in te.named_modules() if isinstance(m, layers)})
    return named


def lora_cfg(**changes: object) -> LoraSection:
    values: dict[str, object] = dict(
        rank=RANK, alpha=ALPHA, train_attention=True, train_ff=True, train_conv=True,
        conv_rank=CONV_RANK, conv_alpha=CONV_ALPHA, train_text_encoder=True,
    )
    values.update(changes)
    return LoraSection(**values)


def inject(pipe, **changes: object) -> LoraHandles:  # type: ignore[no-untyped-def]
    return inject_lora(
        pipe.unet, text_encoders(pipe), lora_cfg(**changes),
        unet_target_modules=ATTENTION, unet_ff_modules=FEED_FORWARD, unet_conv_modules=CONV,
        text_encoder_target_modules=TEXT,
    )


def perturb(handles: LoraHandles, seed: int = 0) -> None:
    """lora_B starts at zero: without this every round trip would trivially match."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in handles.trainable_parameters():
            param.add_(0.1 * torch.randn(param.shape, generator=gen))


@dataclass
class Outputs:
    unet: torch.Tensor
    text: list[torch.Tensor]


@torch.no_grad()
def run_models(pipe) -> Outputs:  # type: ignore[no-untyped-def]
    """UNet and text-encoder outputs on fixed inputs (the UNet's context is fixed too, to isolate it)."""
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 512, (2, 77), generator=gen)
    config = pipe.unet.config
    sample = torch.randn(2, 4, 8, 8, generator=gen)
    context = torch.randn(2, 77, config.cross_attention_dim, generator=gen)
    extra = {}
    if config.addition_embed_type == "text_time":
        pooled = config.projection_class_embeddings_input_dim - 6 * config.addition_time_embed_dim
        extra["added_cond_kwargs"] = {
            "text_embeds": torch.randn(2, pooled, generator=gen),
            "time_ids": torch.randn(2, 6, generator=gen),
        }
    unet = pipe.unet(sample, torch.tensor([10, 700]), encoder_hidden_states=context, **extra).sample
    return Outputs(unet, [te(ids).last_hidden_state for te in text_encoders(pipe)])


def assert_same(got: Outputs, want: Outputs) -> None:
    torch.testing.assert_close(got.unet, want.unet, **TOL)
    assert len(got.text) == len(want.text)
    for a, b in zip(got.text, want.text):
        torch.testing.assert_close(a, b, **TOL)


def assert_differs(a: Outputs, b: Outputs) -> None:
    assert (a.unet - b.unet).abs().max() > 1e-2
    for x, y in zip(a.text, b.text):
        assert (x - y).abs().max() > 1e-2


def file_metadata(path: Path) -> dict[str, str]:
    with safe_open(str(path), "pt") as handle:
        return dict(handle.metadata() or {})


def metadata_for(family: str, **changes: object) -> dict[str, str]:
    values: dict[str, object] = dict(
        family=family, rank=RANK, alpha=ALPHA, output_name=f"tiny-{family}", training_started_at=1700000000.5,
        steps=120, epoch=3, resolution=1024 if family == "sdxl" else 512, conv_rank=CONV_RANK,
        conv_alpha=CONV_ALPHA,
    )
    values.update(changes)
    return lora_metadata(**values)  # type: ignore[arg-type]


@dataclass
class Trained:
    family: str
    folder: Path
    path: Path
    base: Outputs
    out: Outputs
    pipe: object
    handles: LoraHandles


@pytest.fixture(scope="module", params=["sd15", "sdxl"])
def trained(request: pytest.FixtureRequest, model_folders: dict[str, Path],
            tmp_path_factory: pytest.TempPathFactory) -> Trained:
    family = request.param
    pipe = load_pipe(model_folders[family])
    base = run_models(pipe)
    handles = inject(pipe)
    perturb(handles)
    out = run_models(pipe)
    path = tmp_path_factory.mktemp("out") / f"tiny-{family}.safetensors"
    save_kohya_lora(path, pipe.unet, text_encoders(pipe), save_dtype="fp32", metadata=metadata_for(family))
    return Trained(family, model_folders[family], path, base, out, pipe, handles)


# ---------------------------------------------------------------- round trips


def test_kohya_file_loads_in_diffusers_with_trainer_outputs(trained: Trained) -> None:
    assert_differs(trained.out, trained.base)  # the LoRA (UNet and every text encoder) does something
    fresh = load_pipe(trained.folder)
    fresh.load_lora_weights(str(trained.path))
    assert_same(run_models(fresh), trained.out)


def test_diffusers_format_round_trip(trained: Trained, tmp_path: Path) -> None:
    weights = save_diffusers_lora(tmp_path / "diffusers", type(trained.pipe), trained.handles, save_dtype="fp32")
    assert sorted(p.name for p in weights.parent.iterdir()) == [weights.name]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["diffusers"]  # no temp folder left
    fresh = load_pipe(trained.folder)
    fresh.load_lora_weights(str(weights.parent))
    assert_same(run_models(fresh), trained.out)


# ---------------------------------------------------------------- file format


def test_kohya_key_names(trained: Trained) -> None:
    tensors = load_file(str(trained.path))
    prefixes = ("lora_te_",) if trained.family == "sd15" else ("lora_te1_", "lora_te2_")
    modules: dict[str, set[str]] = {}
    for key in tensors:
        module, _, part = key.partition(".")
        assert module.startswith(("lora_unet_", *prefixes)), key
        modules.setdefault(module, set()).add(part)
    for module, parts in modules.items():
        assert parts == {"lora_down.weight", "lora_up.weight", "alpha"}, module
        alpha = tensors[f"{module}.alpha"]
        assert alpha.dtype == torch.float32 and alpha.dim() == 0
    if trained.family == "sd15":
        assert not any(k.startswith(("lora_te1_", "lora_te2_")) for k in tensors)
    for prefix in prefixes:
        # ComfyUI's CLIP key map: lora_te*_text_model_encoder_layers_<n>_<proj>
        te_modules = [m for m in modules if m.startswith(prefix)]
        assert te_modules and all(m.startswith(f"{prefix}text_model_encoder_layers_") for m in te_modules)
    # Every UNet name is a real module of the base model: diffusers' paths for SD 1.x, LDM paths for SDXL
    # (what kohya's own files use; export/naming.py), and the header says which (as kohya's does).
    known = kohya_modules(load_pipe(trained.folder))
    unet_modules = [m for m in modules if m.startswith("lora_unet_")]
    assert unet_modules and all(m in known for m in unet_modules)
    ldm = trained.family == "sdxl"
    assert all(m.startswith(("lora_unet_input_blocks_", "lora_unet_middle_block_", "lora_unet_output_blocks_"))
               == ldm for m in unet_modules)
    assert file_metadata(trained.path)["modelspec.implementation"] == (
        "https://github.com/Stability-AI/generative-models" if ldm else "diffusers")


def test_kohya_shapes_and_alphas(trained: Trained) -> None:
    tensors = load_file(str(trained.path))
    layers = lora_layers(trained.pipe.unet)
    conv3 = "down_blocks.0.resnets.0.conv1"
    shortcut = "down_blocks.1.resnets.0.conv_shortcut"
    attention = next(p for p in layers if p.endswith("attn1.to_q"))
    name = unet_module_name(trained.pipe.unet, conv3)
    out_ch, in_ch, k, _ = trained.pipe.unet.get_submodule(conv3).base_layer.weight.shape
    assert tensors[f"{name}.lora_down.weight"].shape == (CONV_RANK, in_ch, k, k)
    assert tensors[f"{name}.lora_up.weight"].shape == (out_ch, CONV_RANK, 1, 1)
    assert tensors[f"{name}.alpha"].item() == pytest.approx(CONV_ALPHA)
    # 1x1 convolutions count as linear layers (kohya's rule): rank and alpha, not conv_*.
    name = unet_module_name(trained.pipe.unet, shortcut)
    assert tensors[f"{name}.lora_down.weight"].shape[0] == RANK
    assert tensors[f"{name}.alpha"].item() == pytest.approx(ALPHA)
    name = unet_module_name(trained.pipe.unet, attention)
    assert tensors[f"{name}.lora_down.weight"].shape[0] == RANK
    assert tensors[f"{name}.alpha"].item() == pytest.approx(ALPHA)
    torch.testing.assert_close(tensors[f"{name}.lora_up.weight"], layers[attention].up)


def test_metadata_and_hashes(trained: Trained) -> None:
    meta = file_metadata(trained.path)
    assert all(isinstance(v, str) for v in meta.values())
    sdxl = trained.family == "sdxl"
    assert meta["ss_base_model_version"] == ("sdxl_base_v1-0" if sdxl else "sd_v1")
    assert meta["modelspec.architecture"] == (
        "stable-diffusion-xl-v1-base/lora" if sdxl else "stable-diffusion-v1/lora"
    )
    assert meta["modelspec.resolution"] == ("1024x1024" if sdxl else "512x512")
    expected = {
        "ss_network_module": "networks.lora", "ss_network_dim": "4", "ss_network_alpha": "2.5",
        "ss_output_name": f"tiny-{trained.family}", "ss_v2": "False", "ss_steps": "120", "ss_epoch": "3",
        "ss_training_started_at": "1700000000.5", "modelspec.sai_model_spec": "1.0.0",
        "modelspec.title": f"tiny-{trained.family}",
    }
    assert {k: meta.get(k) for k in expected} == expected
    assert json.loads(meta["ss_network_args"]) == {"conv_dim": "3", "conv_alpha": "5.0"}
    assert "modelspec.date" in meta and "modelspec.implementation" in meta
    # kohya's addnet hash: sha256 of everything after the 8-byte length and the JSON header.
    blob = trained.path.read_bytes()
    data_start = 8 + int.from_bytes(blob[:8], "little")
    assert meta["sshs_model_hash"] == hashlib.sha256(blob[data_start:]).hexdigest()
    # legacy hash: 64 KiB at 1 MiB of the file serialized with only the ss_* metadata.
    from safetensors.torch import save

    ss_only = {k: v for k, v in meta.items() if k.startswith("ss_")}
    legacy_blob = save(load_file(str(trained.path)), metadata=ss_only)
    assert meta["sshs_legacy_hash"] == hashlib.sha256(legacy_blob[0x100000:0x110000]).hexdigest()[:8]
    # No temporary file left beside the LoRA.
    assert sorted(p.name for p in trained.path.parent.iterdir()) == [trained.path.name]


def test_save_dtype(trained: Trained, tmp_path: Path) -> None:
    for name, dtype in (("fp16", torch.float16), ("bf16", torch.bfloat16)):
        path = tmp_path / f"{name}.safetensors"
        save_kohya_lora(path, trained.pipe.unet, text_encoders(trained.pipe), save_dtype=name,
                        metadata=metadata_for(trained.family))
        tensors = load_file(str(path))
        assert {t.dtype for k, t in tensors.items() if k.endswith(".weight")} == {dtype}
        assert {t.dtype for k, t in tensors.items() if k.endswith(".alpha")} == {torch.float32}


def test_metadata_for_sd2_and_strings_only() -> None:
    v = lora_metadata(family="sd2", rank=8, alpha=8, output_name="x", training_started_at=1.0, steps=1,
                      epoch=1, resolution=768, v_prediction=True)
    eps = lora_metadata(family="sd2", rank=8, alpha=8, output_name="x", training_started_at=1.0, steps=1,
                        epoch=1, resolution=512, v_prediction=False)
    assert v["ss_v2"] == "True" and v["ss_base_model_version"] == "sd_v2" and v["ss_network_alpha"] == "8.0"
    assert v["modelspec.architecture"] == "stable-diffusion-v2-768-v/lora"
    assert eps["modelspec.architecture"] == "stable-diffusion-v2-512/lora"
    assert "ss_network_args" not in v
    assert all(isinstance(value, str) for value in (*v.values(), *eps.values()))


# ---------------------------------------------------------------- training behaviour


def test_only_lora_parameters_train(model_folders: dict[str, Path]) -> None:
    pipe = load_pipe(model_folders["sd15"])
    handles = inject(pipe)
    models = {"unet": pipe.unet, "text_encoder": pipe.text_encoder}
    trainable = {n for m in models.values() for n, p in m.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_" in n for n in trainable)
    assert {id(p) for p in handles.trainable_parameters()} == {
        id(p) for m in models.values() for p in m.parameters() if p.requires_grad
    }
    assert handles.text_encoder_params and handles.unet_params
    before = {f"{c}.{n}": p.detach().clone() for c, m in models.items() for n, p in m.named_parameters()}

    groups = handles.param_groups(1e-2, 5e-3)
    assert [g["lr"] for g in groups] == [1e-2, 5e-3]
    optimizer = torch.optim.AdamW(groups)
    pipe.unet.train()
    pipe.text_encoder.train()
    ids = torch.randint(0, 512, (1, 77))
    context = pipe.text_encoder(ids).last_hidden_state
    loss = pipe.unet(torch.randn(1, 4, 8, 8), 10, encoder_hidden_states=context).sample.pow(2).mean()
    loss.backward()
    optimizer.step()

    assert all(p.grad is not None for p in handles.trainable_parameters())  # every adapter is in the graph
    for c, m in models.items():
        for n, p in m.named_parameters():
            if ".lora_" not in n:
                assert torch.equal(p.detach(), before[f"{c}.{n}"]), n
    for c, m in models.items():  # lora_B gets the first gradient (lora_A's is zero while B is)
        assert any(".lora_B." in n and not torch.equal(p.detach(), before[f"{c}.{n}"])
                   for n, p in m.named_parameters()), c


def test_unmatched_module_list_is_an_error() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 4))
    with pytest.raises(ValueError, match="train_ff"):
        inject_lora(model, [], lora_cfg(train_conv=False, train_text_encoder=False),
                    unet_target_modules=["0"], unet_ff_modules=["ff.net.2"], unet_conv_modules=[],
                    text_encoder_target_modules=[])


def test_resume_restores_adapter(model_folders: dict[str, Path]) -> None:
    first = load_pipe(model_folders["sd15"])
    handles = inject(first, use_dora=True)
    perturb(handles, seed=3)
    want = run_models(first)
    state = {k: v.clone() for k, v in handles.state_dict().items()}
    assert any(k.startswith("text_encoder.") for k in state) and any("magnitude" in k for k in state)

    second = load_pipe(model_folders["sd15"])
    resumed = inject(second, use_dora=True)
    load_lora_state(resumed, state)
    assert_same(run_models(second), want)

    wrong = dict(state)
    wrong["unet.no.such.module.lora_A.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match="unexpected"):
        load_lora_state(resumed, wrong)


# ---------------------------------------------------------------- DoRA


def merge_dora_reference(pipe, tensors: dict[str, torch.Tensor]) -> None:  # type: ignore[no-untyped-def]
    """Output-axis DoRA merge (LyCORIS wd_on_out / OneTrainer decompose_output_axis), written out here:
    W' = dora_scale * V / ||V||_row, V = W + alpha/r * up @ down."""
    targets = kohya_modules(pipe)
    names = {k.partition(".")[0] for k in tensors}
    with torch.no_grad():
        for name in names:
            weight = targets[name].weight
            down, up = tensors[f"{name}.lora_down.weight"], tensors[f"{name}.lora_up.weight"]
            scale = tensors[f"{name}.alpha"].item() / down.shape[0]
            merged = weight + scale * (up.flatten(1) @ down.flatten(1)).reshape(weight.shape)
            norm = merged.flatten(1).norm(dim=1).reshape(-1, *[1] * (weight.dim() - 1))
            weight.copy_(tensors[f"{name}.dora_scale"] * merged / norm)


def test_dora_export(model_folders: dict[str, Path], tmp_path: Path) -> None:
    pipe = load_pipe(model_folders["sdxl"])
    handles = inject(pipe, use_dora=True)
    perturb(handles, seed=5)
    want = run_models(pipe)
    path = tmp_path / "dora.safetensors"
    save_kohya_lora(path, pipe.unet, text_encoders(pipe), save_dtype="fp32",
                    metadata=metadata_for("sdxl", use_dora=True))
    tensors = load_file(str(path))
    modules = {k.partition(".")[0] for k in tensors}
    for name in modules:
        up = tensors[f"{name}.lora_up.weight"]
        assert tensors[f"{name}.dora_scale"].shape == (up.shape[0], *[1] * (up.dim() - 1)), name
    assert any(tensors[f"{m}.dora_scale"].dim() == 4 for m in modules)  # conv layers carry one too
    assert json.loads(file_metadata(path)["ss_network_args"])["dora_wd"] == "True"

    # The file's meaning, applied by an independent merge into fresh base weights.
    reference = load_pipe(model_folders["sdxl"])
    merge_dora_reference(reference, tensors)
    assert_same(run_models(reference), want)

    # diffusers drops dora_scale from kohya files, but loads DoRA in its own format.
    weights = save_diffusers_lora(tmp_path / "diffusers", type(pipe), handles, save_dtype="fp32")
    fresh = load_pipe(model_folders["sdxl"])
    fresh.load_lora_weights(str(weights.parent))
    assert_same(run_models(fresh), want)


# ---------------------------------------------------------------- atomic writes


def test_failed_replace_keeps_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "lora.safetensors"
    path.write_bytes(b"previous save")

    def broken_replace(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_save_safetensors({"a": torch.ones(3)}, path, {"k": "v"})
    assert path.read_bytes() == b"previous save"
    assert [p.name for p in tmp_path.iterdir()] == ["lora.safetensors"]


def test_crash_mid_write_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import safetensors.torch

    def half_write(tensors: object, filename: str, metadata: object = None) -> None:
        Path(filename).write_bytes(b"\x00" * 100)  # part of a file, then the process "dies"
        raise KeyboardInterrupt

    monkeypatch.setattr(safetensors.torch, "save_file", half_write)
    path = tmp_path / "sub" / "lora.safetensors"
    with pytest.raises(KeyboardInterrupt):
        atomic_save_safetensors({"a": torch.ones(3)}, path)
    assert not path.exists() and list(path.parent.iterdir()) == []


def test_bad_tensors_or_metadata_leave_no_file(tmp_path: Path) -> None:
    path = tmp_path / "lora.safetensors"
    with pytest.raises(Exception):
        atomic_save_safetensors({"a": torch.ones(2), "b": "not a tensor"}, path)  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="strings"):
        atomic_save_safetensors({"a": torch.ones(2)}, path, {"ss_network_dim": 4})  # type: ignore[dict-item]
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_bytes(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    atomic_write_bytes(path, b"one")
    atomic_write_bytes(path, lambda handle: handle.write(b"two"))
    assert path.read_bytes() == b"two"
    assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
