"""LoKr / LoHa (lora.type) through peft and their LyCORIS-format export.

What the trainer computes must be what loaders compute. Two references apply a saved
file to fresh base models and must reproduce the peft model's UNet and text-encoder
outputs: the LyCORIS library's own kohya loader (lycoris.kohya.create_network_from_weights,
the code kohya sd-scripts loads these files with), and an independent merge written
here from the formulas ComfyUI (comfy/weight_adapter/lokr.py, loha.py) and A1111
(network_lokr.py, network_hada.py) apply: LoHa ΔW = (w1a@w1b) * (w2a@w2b) * alpha/r,
LoKr ΔW = kron(w1, w2) * alpha/r, or * 1 when both Kronecker factors are full.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn

from tests.trainer import harness
from tests.trainer.conftest import make_dataset
from tests.trainer.resume import crash_mid_run, resume_matches
from tests.trainer.test_lora_method import (
    ALPHA,
    CONV_ALPHA,
    Outputs,
    assert_differs,
    assert_same,
    inject,
    kohya_modules,
    load_pipe,
    lora_cfg,
    perturb,
    run_models,
    text_encoders,
)
from tuitrain.config.schema import LoraSection
from tuitrain.runs import RunDir
from tuitrain.trainer.export.lycoris import lycoris_tensors, save_lycoris
from tuitrain.trainer.export.metadata import lora_metadata
from tuitrain.trainer.export.naming import unet_has_ldm_names, unet_module_name
from tuitrain.trainer.loading.layout import ldm_unet_module
from tuitrain.trainer.methods.lora import inject_lora, load_lora_state
from tuitrain.trainer.methods.peft_layers import lycoris_layers

KINDS = ("lokr", "loha")
LOKR_FORMS = ({"lokr_w1", "lokr_w2", "alpha"}, {"lokr_w1", "lokr_w2_a", "lokr_w2_b", "alpha"})
LOHA_KEYS = {"hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b", "alpha"}


# ---------------------------------------------------------------- references


class OriginalClipLayout(nn.Module):
    """transformers 5 flattens CLIPTextModel; LyCORIS names text-encoder modules by the original
    `text_model.` nesting (as ComfyUI and A1111 do), so give it that nesting back."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.text_model = encoder


def _original_layout(encoder: nn.Module) -> nn.Module:
    return encoder if any(name == "text_model" for name, _ in encoder.named_children()) else OriginalClipLayout(encoder)


class KohyaSdxlNames(nn.Module):
    """kohya trains SDXL on its LDM-named UNet (sd-scripts library/sdxl_original_unet.py), and LyCORIS
    names modules after the model it is given: this holds the diffusers UNet's layers (the same
    objects) under those LDM names (loading/layout.py's table, checked against diffusers' converter
    and the released checkpoint in test_loading.py)."""

    def __init__(self, unet: nn.Module) -> None:
        super().__init__()
        for path, module in unet.named_modules():
            if isinstance(module, (nn.Linear, nn.Conv2d)):
                self.add_module(ldm_unet_module(path, unet.config).replace(".", "_"), module)


def _kohya_unet(unet: nn.Module) -> nn.Module:
    return KohyaSdxlNames(unet) if unet_has_ldm_names(unet.config) else unet


def apply_with_lycoris(pipe, path: Path, monkeypatch: pytest.MonkeyPatch) -> int:  # type: ignore[no-untyped-def]
    """Load `path` with LyCORIS's kohya loader onto `pipe` (forward hooks); returns the modules it loaded."""
    from lycoris.kohya import LycorisNetworkKohya, create_network_from_weights

    # The loader first builds LyCORIS's default network, whose target list reaches a diffusers UNet's
    # time_embedding.linear_1 twice (by class and by name) and trips its duplicate-name assertion;
    # that network's modules are discarded, only the ones made from the file are used.
    monkeypatch.setattr(LycorisNetworkKohya, "UNET_TARGET_REPLACE_NAME", [])
    encoders = [_original_layout(te) for te in text_encoders(pipe)]
    te_arg = encoders[0] if len(encoders) == 1 else encoders  # a list means lora_te1/lora_te2 names
    unet = _kohya_unet(pipe.unet)
    network, _ = create_network_from_weights(1.0, str(path), None, te_arg, unet, for_inference=True)
    network.apply_to(te_arg, unet, apply_text_encoder=True, apply_unet=True)
    return len(network.unet_loras) + len(network.text_encoder_loras)


def formula_delta(t: dict[str, torch.Tensor], shape: torch.Size) -> torch.Tensor:
    """ΔW of one module from its file tensors, as ComfyUI/A1111 compute it."""

    def cp(core: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.einsum("i j k l, j r, i p -> p r k l", core, b, a)

    alpha = t["alpha"].item()
    if "hada_w1_a" in t:
        if "hada_t1" in t:
            w1, w2 = cp(t["hada_t1"], t["hada_w1_a"], t["hada_w1_b"]), cp(t["hada_t2"], t["hada_w2_a"], t["hada_w2_b"])
        else:
            w1, w2 = t["hada_w1_a"] @ t["hada_w1_b"], t["hada_w2_a"] @ t["hada_w2_b"]
        return (w1 * w2).reshape(shape) * (alpha / t["hada_w1_b"].shape[0])
    dim = None
    if "lokr_w1" in t:
        w1 = t["lokr_w1"]
    else:
        w1, dim = t["lokr_w1_a"] @ t["lokr_w1_b"], t["lokr_w1_b"].shape[0]
    if "lokr_w2" in t:
        w2 = t["lokr_w2"]
    else:
        dim = t["lokr_w2_b"].shape[0]
        w2 = cp(t["lokr_t2"], t["lokr_w2_a"], t["lokr_w2_b"]) if "lokr_t2" in t else t["lokr_w2_a"] @ t["lokr_w2_b"]
    if w2.dim() == 4:
        w1 = w1[:, :, None, None]
    return torch.kron(w1, w2.contiguous()).reshape(shape) * (alpha / dim if dim else 1.0)


def by_module(tensors: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    modules: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        module, _, suffix = key.partition(".")
        modules.setdefault(module, {})[suffix] = value
    return modules


@torch.no_grad()
def merge_by_formula(pipe, tensors: dict[str, torch.Tensor]) -> None:  # type: ignore[no-untyped-def]
    targets = kohya_modules(pipe)
    for name, parts in by_module(tensors).items():
        weight = targets[name].weight
        weight += formula_delta(parts, weight.shape)


def file_metadata(path: Path) -> dict[str, str]:
    with safe_open(str(path), "pt") as handle:
        return dict(handle.metadata() or {})


# ---------------------------------------------------------------- round trips


@dataclass
class Trained:
    family: str
    kind: str
    folder: Path
    path: Path
    base: Outputs
    out: Outputs
    pipe: object


@pytest.fixture(scope="module", params=[(f, k) for f in ("sd15", "sdxl") for k in KINDS], ids="-".join)
def trained(request: pytest.FixtureRequest, tiny_model, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    family, kind = request.param
    folder = tiny_model(family)
    pipe = load_pipe(folder)
    base = run_models(pipe)
    handles = inject(pipe, type=kind)  # alpha != rank, conv at its own rank/alpha, ff, text encoders
    perturb(handles)
    out = run_models(pipe)
    path = tmp_path_factory.mktemp("out") / f"{family}-{kind}.safetensors"
    metadata = lora_metadata(family=family, rank=4, alpha=ALPHA, output_name="x", training_started_at=1.0, steps=5,
                             epoch=1, resolution=64, conv_rank=3, conv_alpha=CONV_ALPHA, algo=kind, lokr_factor=-1)
    save_lycoris(path, pipe.unet, text_encoders(pipe), save_dtype="fp32", metadata=metadata)
    return Trained(family, kind, folder, path, base, out, pipe)


def test_lycoris_library_loads_the_file_with_trainer_outputs(trained: Trained,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    assert_differs(trained.out, trained.base)  # the adapter (UNet and every text encoder) does something
    fresh = load_pipe(trained.folder)
    loaded = apply_with_lycoris(fresh, trained.path, monkeypatch)
    assert loaded == len(by_module(load_file(str(trained.path))))  # none skipped for an unknown name
    assert_same(run_models(fresh), trained.out)


def test_comfyui_formulas_reproduce_trainer_outputs(trained: Trained) -> None:
    fresh = load_pipe(trained.folder)
    merge_by_formula(fresh, load_file(str(trained.path)))
    assert_same(run_models(fresh), trained.out)


# ---------------------------------------------------------------- file format


def test_key_layout_and_scale_convention(trained: Trained) -> None:
    tensors = load_file(str(trained.path))
    modules = by_module(tensors)
    prefixes = ("lora_te_",) if trained.family == "sd15" else ("lora_te1_", "lora_te2_")
    assert all(m.startswith(("lora_unet_", *prefixes)) for m in modules)
    for prefix in prefixes:
        te_modules = [m for m in modules if m.startswith(prefix)]
        assert te_modules and all(m.startswith(f"{prefix}text_model_encoder_layers_") for m in te_modules)
    peft_layers = lycoris_layers(trained.pipe.unet)
    unet_paths = {unet_module_name(trained.pipe.unet, p): p for p in peft_layers}
    forms = set()
    for name, parts in modules.items():
        alpha = parts["alpha"]
        assert alpha.dtype == torch.float32 and alpha.dim() == 0
        if trained.kind == "loha":
            assert set(parts) == LOHA_KEYS, name
        else:
            assert set(parts) in LOKR_FORMS, name
            forms.add(frozenset(parts))
        if not name.startswith("lora_unet_"):
            continue
        layer = peft_layers[unet_paths[name]]
        base_layer = trained.pipe.unet.get_submodule(unet_paths[name]).base_layer
        spatial = isinstance(base_layer, nn.Conv2d) and base_layer.kernel_size != (1, 1)
        configured = CONV_ALPHA if spatial else ALPHA
        assert layer.scale == pytest.approx(configured / layer.rank)
        if "lokr_w2" in parts:  # both factors full: loaders use scale 1, so the file carries peft's scale
            assert alpha.item() == layer.rank
            torch.testing.assert_close(parts["lokr_w1"], layer.factors["lokr_w1"] * layer.scale)
        else:
            assert alpha.item() == pytest.approx(configured)
            for key, value in layer.factors.items():
                assert torch.equal(parts[key], value), (name, key)
    if trained.kind == "lokr":
        assert len(forms) == 2  # the tiny models exercise both conventions


def test_metadata(trained: Trained) -> None:
    meta = file_metadata(trained.path)
    assert meta["ss_network_module"] == "lycoris.kohya"
    assert meta["ss_network_dim"] == "4" and meta["ss_network_alpha"] == "2.5"
    args = {"conv_dim": "3", "conv_alpha": "5.0", "algo": trained.kind}
    if trained.kind == "lokr":
        args["factor"] = "-1"
    assert json.loads(meta["ss_network_args"]) == args
    assert meta["sshs_model_hash"] and meta["sshs_legacy_hash"]
    plain = lora_metadata(family="sd15", rank=4, alpha=4, output_name="x", training_started_at=1.0, steps=1, epoch=1,
                          resolution=64)
    assert plain["ss_network_module"] == "networks.lora" and "ss_network_args" not in plain


def test_save_dtype(trained: Trained, tmp_path: Path) -> None:
    path = tmp_path / "half.safetensors"
    save_lycoris(path, trained.pipe.unet, text_encoders(trained.pipe), save_dtype="bf16", metadata={})
    tensors = load_file(str(path))
    assert {t.dtype for k, t in tensors.items() if not k.endswith(".alpha")} == {torch.bfloat16}
    assert {t.dtype for k, t in tensors.items() if k.endswith(".alpha")} == {torch.float32}
    full = load_file(str(trained.path))
    assert tensors.keys() == full.keys()
    for key, value in full.items():
        torch.testing.assert_close(tensors[key].float(), value, atol=0, rtol=2**-8)


def test_lokr_factor_splits_like_lycoris(tiny_model, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """lokr_factor is peft's decompose_factor, split the way LyCORIS splits: its loader re-derives the
    split from the factor, and for the 32-channel layers at factor 8 peft 0.21 alone says 8x4, LyCORIS 4x8
    (full size: 320 channels at factor 32)."""
    from lycoris.functional.general import factorization
    from peft.tuners.lokr.layer import factorization as peft_factorization

    from tuitrain.trainer.families import get_adapter

    factor = 8
    adapter = get_adapter("sd15")
    pipe = load_pipe(tiny_model("sd15"))
    cfg = lora_cfg(type="lokr", lokr_factor=factor, train_text_encoder=False)
    handles = inject_lora(pipe.unet, [], cfg, unet_target_modules=list(adapter.attention_modules),
                          unet_ff_modules=list(adapter.feed_forward_modules),
                          unet_conv_modules=list(adapter.conv_modules), text_encoder_target_modules=[])
    assert pipe.unet.peft_config["default"].decompose_factor == factor
    perturb(handles, seed=2)
    want = run_models(pipe)
    layers = lycoris_layers(pipe.unet)
    dims = {int(d) for path in layers for d in pipe.unet.get_submodule(path).base_layer.weight.shape[:2]}
    assert any(peft_factorization(d, factor) != factorization(d, factor) for d in dims)  # the case this is about
    for path, layer in layers.items():
        out_dim, in_dim = pipe.unet.get_submodule(path).base_layer.weight.shape[:2]
        w1 = layer.factors["lokr_w1"]
        assert tuple(w1.shape) == (factorization(out_dim, factor)[0], factorization(in_dim, factor)[0]), path
    file = tmp_path / "f4.safetensors"
    save_lycoris(file, pipe.unet, text_encoders(pipe), save_dtype="fp32", metadata={})
    fresh = load_pipe(tiny_model("sd15"))
    assert apply_with_lycoris(fresh, file, monkeypatch) == len(layers)  # LyCORIS infers the factor from shapes
    assert_same(run_models(fresh), want)
    merged = load_pipe(tiny_model("sd15"))
    merge_by_formula(merged, load_file(str(file)))
    assert_same(run_models(merged), want)
    # Resume injects the same split again.
    again = load_pipe(tiny_model("sd15"))
    resumed = inject_lora(again.unet, [], cfg, unet_target_modules=list(adapter.attention_modules),
                          unet_ff_modules=list(adapter.feed_forward_modules),
                          unet_conv_modules=list(adapter.conv_modules), text_encoder_target_modules=[])
    load_lora_state(resumed, handles.state_dict())
    assert_same(run_models(again), want)


@pytest.mark.parametrize("kind", KINDS)
def test_cp_convolution_factors_export(kind: str) -> None:
    """peft's use_effective_conv2d (LyCORIS's tucker): hada_t1/t2 and lokr_t2 keep their meaning."""
    import copy

    from lycoris.modules import get_module, make_module
    from peft import LoHaConfig, LoKrConfig, inject_adapter_in_model

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(32, 48, 3, padding=1), nn.Conv2d(48, 64, 3, padding=1))
    config_cls = LoKrConfig if kind == "lokr" else LoHaConfig
    inject_adapter_in_model(config_cls(r=2, alpha=3.0, target_modules=["0", "1"], use_effective_conv2d=True), model)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if ".default" in name:
                param.add_(0.1 * torch.randn_like(param))
    layers = lycoris_layers(model)
    assert sorted(layers) == ["0", "1"]
    for path, layer in layers.items():
        tensors = lycoris_tensors(layer)
        assert ({"hada_t1", "hada_t2"} <= set(tensors)) if kind == "loha" else ("lokr_t2" in tensors)
        peft_layer = model.get_submodule(path)
        peft_delta = peft_layer.get_delta_weight("default")
        torch.testing.assert_close(formula_delta(tensors, peft_delta.shape), peft_delta, atol=1e-5, rtol=1e-5)
        if kind == "lokr":
            # LyCORIS 4.1's LokrModule.make_module_from_state_dict reads the rank of a tucker w2
            # from lokr_w2_a.size(1), which is w2's output factor in that layout: it cannot load
            # tucker LoKr files, its own included. ComfyUI/A1111 read it from lokr_w2_b.shape[0],
            # as formula_delta does. (Training never writes this form: use_effective_conv2d is off.)
            continue
        # LyCORIS's per-module loader (what its kohya loader calls for every name in a file).
        base = copy.deepcopy(peft_layer.base_layer)
        algo, params = get_module({f"m.{k}": v for k, v in tensors.items()}, "m")
        with torch.no_grad():
            module = make_module(algo, params, "m", base)
            module.apply_to()
            x = torch.randn(1, base.in_channels, 8, 8)
            torch.testing.assert_close(base(x), peft_layer(x), atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------- training behaviour


@pytest.mark.parametrize("kind", KINDS)
def test_only_adapter_parameters_train_and_resume_is_strict(kind: str, tiny_model) -> None:
    prefix = {"lokr": ".lokr_", "loha": ".hada_"}[kind]
    pipe = load_pipe(tiny_model("sd15"))
    handles = inject(pipe, type=kind)
    models = {"unet": pipe.unet, "text_encoder": pipe.text_encoder}
    trainable = {id(p) for m in models.values() for p in m.parameters() if p.requires_grad}
    assert trainable == {id(p) for p in handles.trainable_parameters()}
    assert handles.unet_params and handles.text_encoder_params
    assert all(prefix in n for m in models.values() for n, p in m.named_parameters() if p.requires_grad)
    before = {f"{c}.{n}": p.detach().clone() for c, m in models.items() for n, p in m.named_parameters()}
    optimizer = torch.optim.AdamW(handles.param_groups(1e-2, 5e-3))
    ids = torch.randint(0, 512, (1, 77))
    loss = pipe.unet(torch.randn(1, 4, 8, 8), 10, encoder_hidden_states=pipe.text_encoder(ids).last_hidden_state)
    loss.sample.pow(2).mean().backward()
    optimizer.step()
    for c, m in models.items():
        changed = {n for n, p in m.named_parameters() if not torch.equal(p.detach(), before[f"{c}.{n}"])}
        assert changed and all(prefix in n for n in changed), c

    perturb(handles, seed=3)
    want = run_models(pipe)
    state = {k: v.clone() for k, v in handles.state_dict().items()}
    assert any(k.startswith("text_encoder.") for k in state) and all(prefix in k for k in state)
    second = load_pipe(tiny_model("sd15"))
    resumed = inject(second, type=kind)
    load_lora_state(resumed, state)
    assert_same(run_models(second), want)
    with pytest.raises(ValueError, match="unexpected"):
        load_lora_state(resumed, {**state, f"unet.no.such{prefix}w1": torch.zeros(1)})
    with pytest.raises(ValueError, match="missing"):
        load_lora_state(resumed, dict(list(state.items())[1:]))
    with pytest.raises(ValueError, match="missing"):  # a LoKr backup does not resume a LoHa run
        other = "loha" if kind == "lokr" else "lokr"
        load_lora_state(inject(load_pipe(tiny_model("sd15")), type=other), state)


def test_lycoris_options_rejected_with_a_message() -> None:
    from tuitrain.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match=r"^c.toml: lora.dropout: applies to type = 'lora' only, not 'loha'"):
        parse_config({"lora": {"type": "loha", "dropout": 0.1}}, "c.toml", ())
    with pytest.raises(ConfigError, match=r"^c.toml: lora.use_dora: "):
        parse_config({"lora": {"type": "lokr", "use_dora": True}}, "c.toml", ())
    assert LoraSection(type="lora", dropout=0.1).dropout == 0.1
    model = nn.Sequential(nn.Linear(4, 4))
    with pytest.raises(ValueError, match="train_ff"):
        inject_lora(model, [], lora_cfg(type="lokr", train_ff=True, train_conv=False, train_text_encoder=False),
                    unet_target_modules=["0"], unet_ff_modules=["ff.net.2"], unet_conv_modules=[],
                    text_encoder_target_modules=[])


# ---------------------------------------------------------------- end to end


def _new_run(name: str, preset: str, model: Path, data: Path, *sets: str) -> RunDir:
    return harness.new_run(name, model, data, "data.resolution=64", "training.batch_size=2", "lora.rank=4",
                           "lora.alpha=2", "training.learning_rate=1e-3", "training.lr_warmup_steps=0",
                           "sampling.every_epochs=0", "saving.every_epochs=0", "saving.dtype=fp32", *sets,
                           preset=preset)


_events = harness.events


def _peft_from_backup(run: RunDir, family: str, folder: Path, step: int):  # type: ignore[no-untyped-def]
    """A fresh pipeline with the adapter exactly as the trainer held it at `step` (from its backup)."""
    from tuitrain.config import load_config
    from tuitrain.trainer.families import get_adapter

    cfg = load_config(run.config)
    adapter = get_adapter(family)
    pipe = load_pipe(folder)
    encoders = text_encoders(pipe) if cfg.lora.train_text_encoder else []
    handles = inject_lora(pipe.unet, encoders, cfg.lora, unet_target_modules=list(adapter.attention_modules),
                          unet_ff_modules=list(adapter.feed_forward_modules),
                          unet_conv_modules=list(adapter.conv_modules),
                          text_encoder_target_modules=list(adapter.text_encoder_modules))
    load_lora_state(handles, load_file(run.checkpoints / f"step-{step:08d}" / "adapter.safetensors"))
    return pipe


@pytest.mark.parametrize("family, preset", [("sd15", "sd15-lora"), ("sdxl", "sdxl-lora")])
def test_train_lokr_end_to_end_and_load_the_file(family: str, preset: str, tiny_model, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    model, data = tiny_model(family), make_dataset(tmp_path / "data")
    run = _new_run("kron", preset, model, data, "lora.type=lokr", "lora.lokr_factor=4", "lora.train_conv=true",
                   "lora.train_text_encoder=true", "training.epochs=2", "saving.every_steps=4",
                   "saving.backup_every_steps=4", "sampling.every_epochs=2", "sampling.steps=2")
    assert harness.train(run) == 0, _events(run)[-1]
    final = load_file(run.output / "kron.safetensors")
    assert final and all(k.rpartition(".")[2] in {"lokr_w1", "lokr_w2", "lokr_w2_a", "lokr_w2_b", "alpha"}
                         for k in final)
    conv1 = unet_module_name(load_pipe(model).unet, "down_blocks.0.resnets.0.conv1")  # LDM-named for SDXL
    assert any(k.startswith("lora_te") for k in final) and f"{conv1}.lokr_w1" in final
    assert any(e["type"] == "sample" and Path(e["path"]).is_file() for e in _events(run))  # sampling with LoKr on
    meta = file_metadata(run.output / "kron.safetensors")
    assert meta["ss_network_module"] == "lycoris.kohya" and meta["ss_steps"] == "8"
    assert json.loads(meta["ss_network_args"])["factor"] == "4"

    # The intermediate save at step 4 and the backup of that step: the file, loaded by LyCORIS,
    # reproduces the adapter the trainer held.
    saved = [Path(e["path"]) for e in _events(run) if e["type"] == "saved" and e["step"] == 4]
    assert len(saved) == 1
    trainer = _peft_from_backup(run, family, model, 4)
    want = run_models(trainer)
    base = run_models(load_pipe(model))
    assert (want.unet - base.unet).abs().max() > 1e-4  # training moved the adapter off its zero start
    fresh = load_pipe(model)
    apply_with_lycoris(fresh, saved[0], monkeypatch)
    assert_same(run_models(fresh), want)
    merged = load_pipe(model)
    merge_by_formula(merged, load_file(saved[0]))
    assert_same(run_models(merged), want)


def test_loha_killed_then_resumed_is_bit_identical(tiny_model, tmp_path: Path) -> None:
    """LoHa's factors go into the backups: a trainer killed mid-run (in-process, resume.crash_mid_run) and
    resumed ends with the uninterrupted run's file. The SIGKILLed process itself: test_train_e2e."""
    model, data = tiny_model("sd15"), make_dataset(tmp_path / "data")
    common = ("lora.type=loha", "lora.train_text_encoder=true", "training.epochs=4", "saving.backup_every_steps=3",
              "saving.backup_keep_last=2")
    straight = _new_run("straight", "sd15-lora", model, data, *common)
    assert harness.train(straight) == 0  # the uninterrupted reference
    reference = load_file(straight.output / "straight.safetensors")
    assert reference and all(k.rpartition(".")[2] in LOHA_KEYS for k in reference)

    broken = _new_run("broken", "sd15-lora", model, data, *common)
    last_step = crash_mid_run(broken, (4, 12))
    resume_matches(broken, straight.output / "straight.safetensors", last_step, backup_every=3, in_process=True)


def test_diffusers_format_with_lokr_is_refused_by_the_config(cli, tiny_model, tmp_path: Path) -> None:
    """Refused when the config is made (and by `check`), not when the trainer starts."""
    out = cli("new", "nodiff", "--preset", "sd15-lora", "--data", str(make_dataset(tmp_path / "data", count=2)),
              "--base", str(tiny_model("sd15")), "--set", "lora.type=lokr", "--set", "saving.diffusers_format=true")
    assert out.returncode == 2
    assert "Traceback" not in out.stdout + out.stderr
    assert "saving.diffusers_format" in out.stderr and "lokr" in out.stderr
