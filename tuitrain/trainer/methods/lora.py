"""LoRA, LoKr and LoHa training through peft, the same integration diffusers' own LoRA scripts use.

Family-agnostic: the family adapter says which module names to adapt; this module
turns the [lora] config section into one peft adapter per model (UNet, each text
encoder), freezes everything else, and puts saved layers back on resume (what the
exporters read out of peft lives in peft_layers.py). `lora.type` picks peft's LoraConfig, LoKrConfig or LoHaConfig; the
targets, conv patterns and text-encoder handling are the same for all three.

Convolutions get their own rank/alpha through peft's rank_pattern/alpha_pattern in
the UNet's single adapter rather than a second adapter: one adapter means one
forward path, one state dict, one `peft_config` for diffusers' save_lora_weights to
record, and what diffusers reloads is a single adapter again. The patterns are
keyed by exact module paths, so nothing but the intended convolutions can match.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from tuitrain.config import Config
from tuitrain.config.schema import LoraSection
from tuitrain.families import FAMILIES
from tuitrain.trainer.families import family_files
from tuitrain.trainer.families.base import FamilyAdapter, ModelParts
from tuitrain.trainer.errors import TrainingError
from tuitrain.trainer.methods.base import SaveRequest, TrainingMethod
from tuitrain.trainer.methods.peft_layers import ADAPTER, TEXT_ENCODER_NAMES, LoraHandles

# peft's parameter-name prefix of each adapter type (LoraModel/LoKrModel/LoHaModel.prefix).
_PARAM_PREFIX = {"lora": "lora_", "lokr": "lokr_", "loha": "hada_"}
_ADAPTABLE = (nn.Linear, nn.Conv2d)


def match_modules(model: nn.Module, suffixes: Iterable[str]) -> list[str]:
    """Full paths of the Linear/Conv2d modules named by `suffixes` (peft's rule: equal or '.'-suffix)."""
    wanted = tuple(suffixes)
    if not wanted:
        return []
    return [
        name
        for name, module in model.named_modules()
        if isinstance(module, _ADAPTABLE) and any(name == s or name.endswith("." + s) for s in wanted)
    ]


def _is_spatial_conv(module: nn.Module) -> bool:
    """3x3-style convolutions take conv_rank/conv_alpha; 1x1 ones act as linear layers (as kohya does)."""
    return isinstance(module, nn.Conv2d) and tuple(module.kernel_size) != (1, 1)


def _require(names: list[str], what: str, option: str, suffixes: Iterable[str]) -> list[str]:
    if not names:
        raise ValueError(f"lora.{option}: no {what} module matches {sorted(suffixes)}")
    return names


def _adapter_config(cfg: LoraSection, targets: list[str], rank_pattern: dict[str, int] | None = None,
                    alpha_pattern: dict[str, float] | None = None):  # type: ignore[no-untyped-def]
    """The peft config for `lora.type`, over exactly `targets`.

    LoKr/LoHa have no plain dropout in peft or LyCORIS (the schema rejects lora.dropout
    for them). LoKr starts the LyCORIS way (the larger factor w2 at zero, w1 random), so
    learning rates tuned on LyCORIS-trained LoKr carry over; lokr_factor is peft's
    decompose_factor, LyCORIS's `factor` (see lycoris_factorization). Whether a LoKr
    factor is stored whole or as a rank-r product follows the same rule in both.
    """
    patterns = {"rank_pattern": rank_pattern or {}, "alpha_pattern": alpha_pattern or {}}
    if cfg.type == "lokr":
        from peft import LoKrConfig

        return LoKrConfig(r=cfg.rank, alpha=cfg.alpha, decompose_factor=cfg.lokr_factor, init_weights="lycoris",
                          target_modules=targets, **patterns)
    if cfg.type == "loha":
        from peft import LoHaConfig

        return LoHaConfig(r=cfg.rank, alpha=cfg.alpha, target_modules=targets, **patterns)
    from peft import LoraConfig

    return LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, use_dora=cfg.use_dora,
                      target_modules=targets, **patterns)


def _unet_config(unet: nn.Module, cfg: LoraSection, linear: list[str], conv: list[str]):  # type: ignore[no-untyped-def]
    modules = dict(unet.named_modules())
    targets = sorted(set(linear) | set(conv))
    spatial = [name for name in targets if _is_spatial_conv(modules[name])]
    return _adapter_config(
        cfg, targets,
        rank_pattern={re.escape(name): cfg.conv_rank for name in spatial},
        alpha_pattern={re.escape(name): cfg.conv_alpha for name in spatial},
    )


def _text_config(cfg: LoraSection, targets: list[str]):  # type: ignore[no-untyped-def]
    return _adapter_config(cfg, targets)


@contextmanager
def lycoris_factorization(kind: str) -> Iterator[None]:
    """While LoKr layers are created, split dimensions the way current LyCORIS does.

    peft's LoKr copies an older LyCORIS `factorization()` that, when lokr_factor divides
    a dimension, returns (factor, dim / factor) even when the first is larger (4 channels
    by factor 4 -> (4, 1)); LyCORIS now always puts the smaller number first ((1, 4)).
    The two agree everywhere else. LyCORIS's loader re-derives each layer's split from
    the factor, so a peft split it would not make cannot load there (ComfyUI/A1111 read
    the stored shapes and take either). Scoped to injection: nothing else calls it.
    """
    if kind != "lokr":
        yield
        return
    from peft.tuners.lokr import layer

    original = layer.factorization

    def smaller_first(dimension: int, factor: int = -1) -> tuple[int, int]:
        m, n = original(dimension, factor)
        return (m, n) if m <= n else (n, m)

    layer.factorization = smaller_first
    try:
        yield
    finally:
        layer.factorization = original


def _lora_parameters(model: nn.Module, kind: str = "lora") -> list[nn.Parameter]:
    """The adapter's own parameters (lora_A/B and DoRA magnitude, lokr_*, hada_*), found by peft's naming."""
    prefix = _PARAM_PREFIX[kind]
    return [p for name, p in model.named_parameters() if prefix in name and f".{ADAPTER}" in name]


def _inject(adapter_config, model: nn.Module) -> None:  # type: ignore[no-untyped-def]
    """Add one peft adapter to `model` with peft's own API, for UNets and text encoders alike.

    Not diffusers' or transformers' `add_adapter`: both wrap this same peft call, and
    transformers' wrapper refuses to run when its minimum peft version is newer than the
    newest peft published (transformers 5.24+ with peft 0.21 did exactly that). One
    library's adapter API means one version pairing that can break injection, not two.
    `inject_adapter_in_model` records the config in `model.peft_config` as the wrappers
    do, which get_peft_model_state_dict and diffusers' save_lora_weights read; the
    `_hf_peft_config_loaded` flag is what both wrappers set to say "an adapter is here".
    """
    from peft import inject_adapter_in_model

    adapter_config.base_model_name_or_path = None  # as diffusers' add_adapter: no hub id to record
    inject_adapter_in_model(adapter_config, model, adapter_name=ADAPTER)
    model._hf_peft_config_loaded = True


def inject_lora(
    unet: nn.Module,
    text_encoders: list[nn.Module],
    lora_cfg: LoraSection,
    *,
    unet_target_modules: list[str],
    unet_ff_modules: list[str],
    unet_conv_modules: list[str],
    text_encoder_target_modules: list[str],
    denoiser_name: str = "unet",
    denoiser_modules: tuple[str, list[str]] | None = None,
) -> LoraHandles:
    """Add the configured LoRA/LoKr/LoHa to the UNet (and text encoders); freeze all base weights.

    `denoiser_modules` (the option that named them, the suffixes): the user's own choice of denoiser
    layers (lora.targets / lora.target_modules), instead of the attention / feed-forward switches; each
    name must match a layer, so a typo or a set meant for a bigger model stops the run at start.
    Raises ValueError when an enabled group matches no module, so a wrong family
    module list fails at start instead of training nothing.
    """
    for model in (unet, *text_encoders):
        model.requires_grad_(False)

    linear: list[str] = []
    if denoiser_modules is not None:
        option, suffixes = denoiser_modules
        for suffix in suffixes:
            if not match_modules(unet, [suffix]):
                raise ValueError(f"lora.{option}: {suffix!r} matches no linear or convolution layer of the "
                                 f"{denoiser_name}")
        linear = match_modules(unet, suffixes)
    elif lora_cfg.train_attention:
        linear += _require(match_modules(unet, unet_target_modules), "denoiser attention", "train_attention",
                           unet_target_modules)
    if lora_cfg.train_ff and denoiser_modules is None:
        linear += _require(match_modules(unet, unet_ff_modules), "denoiser feed-forward", "train_ff", unet_ff_modules)
    conv: list[str] = []
    if lora_cfg.train_conv:
        conv = _require(match_modules(unet, unet_conv_modules), "denoiser convolution", "train_conv", unet_conv_modules)

    handles = LoraHandles(unet=unet, text_encoders=list(text_encoders), denoiser_name=denoiser_name)
    with lycoris_factorization(lora_cfg.type):
        if linear or conv:
            _inject(_unet_config(unet, lora_cfg, linear, conv), unet)
            handles.adapted.append(denoiser_name)
        if lora_cfg.train_text_encoder:
            for index, encoder in enumerate(text_encoders):
                targets = _require(match_modules(encoder, text_encoder_target_modules), "text-encoder",
                                   "train_text_encoder", text_encoder_target_modules)
                _inject(_text_config(lora_cfg, targets), encoder)
                handles.adapted.append(TEXT_ENCODER_NAMES[index])

    # Injection marks the adapter trainable; set it explicitly so a frozen-by-default
    # peft version cannot silently train nothing.
    if denoiser_name in handles.adapted:
        handles.unet_params = _lora_parameters(unet, lora_cfg.type)
    for name, model in handles.models().items():
        if name != denoiser_name:
            handles.text_encoder_params += _lora_parameters(model, lora_cfg.type)
    for param in handles.trainable_parameters():
        param.requires_grad_(True)
    return handles


def load_lora_state(handles: LoraHandles, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Put a saved adapter (LoraHandles.state_dict() layout) back into injected models, for resume.

    Strict: a key the models do not have, or an adapter weight the file lacks, is an
    error, because a resume that silently restarts some layers from scratch is worse
    than one that stops.
    """
    from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict

    models = handles.models()
    parts: dict[str, dict[str, torch.Tensor]] = {name: {} for name in models}
    for key, value in state_dict.items():
        component, _, rest = key.partition(".")
        if component not in parts:
            raise ValueError(f"saved LoRA has weights for {component!r}, which has no adapter in this run")
        parts[component][rest] = value
    for name, model in models.items():
        expected = set(get_peft_model_state_dict(model, adapter_name=ADAPTER))
        given = set(parts[name])
        if expected != given:
            missing, extra = sorted(expected - given)[:3], sorted(given - expected)[:3]
            raise ValueError(f"saved LoRA does not fit {name}: missing {missing}, unexpected {extra}")
        result = set_peft_model_state_dict(model, parts[name], adapter_name=ADAPTER)
        unexpected = getattr(result, "unexpected_keys", None) or []
        if unexpected:
            raise ValueError(f"saved LoRA does not fit {name}: unexpected {unexpected[:3]}")


def chosen_modules(config: Config) -> tuple[str, list[str]] | None:
    """The denoiser layers the user named (lora.target_modules, or a family's lora.targets set), else None."""
    cfg = config.lora
    if cfg.target_modules:
        return "target_modules", list(cfg.target_modules)
    if cfg.targets:
        return "targets", list(FAMILIES[config.model.family].lora_target_sets[cfg.targets])
    return None


class LoraMethod(TrainingMethod):
    """training.method = "lora": a peft LoRA/LoKr/LoHa on the UNet (and text encoders), saved in kohya names."""

    def __init__(self, config: Config, parts: ModelParts, adapter: FamilyAdapter) -> None:
        super().__init__(config, parts, adapter)
        cfg = config.lora
        if cfg.type != "lora" and config.saving.diffusers_format:
            # Checked before injection so the run stops at start, not after training.
            raise TrainingError(
                f"saving.diffusers_format: diffusers' LoRA loaders read plain LoRA only, not lora.type = "
                f"{cfg.type!r}; turn it off (the .safetensors in LyCORIS names loads in ComfyUI, A1111 and kohya)"
            )
        self.files = family_files(config.model.family)
        dora = self.files.dora_problem(config)  # what `tuitrain check` blocks, in the same words
        if dora:
            raise TrainingError(dora)
        if self.files.lora_format == "peft" and cfg.type != "lora" and (not self.files.lycoris_prefix
                                                                         or cfg.train_text_encoder):
            raise TrainingError(
                f"lora.type = {cfg.type!r}: tuitrain writes {config.model.family} LoKr/LoHa files for the denoiser "
                "only; set lora.train_text_encoder = false (or use lora.type = 'lora')"
            )
        self.trains_text_encoders = cfg.train_text_encoder
        # The text encoders a family's LoRA may adapt: its CLIP ones (Flux: not T5).
        encoders = parts.text_encoders[: adapter.trainable_text_encoders] if cfg.train_text_encoder else []
        try:
            self.handles = inject_lora(
                parts.denoiser, encoders, cfg,
                unet_target_modules=list(adapter.attention_modules),
                unet_ff_modules=list(adapter.feed_forward_modules),
                unet_conv_modules=list(adapter.conv_modules),
                text_encoder_target_modules=list(adapter.text_encoder_modules),
                denoiser_name=self.files.denoiser_component,
                denoiser_modules=chosen_modules(config),
            )
        except ValueError as exc:  # a module list that matches nothing: a message, not a traceback
            raise TrainingError(str(exc)) from exc
        # peft makes the adapter in its base layer's dtype, which the loop has already cast to the
        # compute dtype: bf16 adapter weights round Adam-sized steps away and fp16 ones cannot be
        # unscaled. fp32 master weights, as diffusers' cast_training_params does; autocast computes.
        for param in self.handles.trainable_parameters():
            param.data = param.data.float()

    def trainable_parameters(self) -> list[nn.Parameter]:
        return self.handles.trainable_parameters()

    def text_encoder_parameters(self) -> list[nn.Parameter]:
        return list(self.handles.text_encoder_params)

    def param_groups(self, lr: float) -> list[dict]:
        return self.handles.param_groups(lr, self.config.lora.text_encoder_lr)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.handles.state_dict()

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        load_lora_state(self.handles, state)

    def save(self, request: SaveRequest) -> Path:
        from tuitrain.trainer.export.kohya_lora import save_diffusers_lora, save_kohya_lora
        from tuitrain.trainer.export.lycoris import save_lycoris
        from tuitrain.trainer.export.metadata import base_precision_metadata, lora_metadata

        cfg = self.config
        kind = cfg.lora.type
        metadata = lora_metadata(
            family=cfg.model.family, rank=cfg.lora.rank, alpha=cfg.lora.alpha, output_name=request.stem,
            training_started_at=request.started_at, steps=request.step, epoch=request.epoch,
            resolution=cfg.data.resolution,
            v_prediction=None if self.parts.prediction_type == "flow" else self.parts.prediction_type == "v_prediction",
            conv_rank=cfg.lora.conv_rank if cfg.lora.train_conv else None,
            conv_alpha=cfg.lora.conv_alpha if cfg.lora.train_conv else None,
            use_dora=cfg.lora.use_dora, algo=kind, lokr_factor=cfg.lora.lokr_factor if kind == "lokr" else None,
            flavour=self.parts.flavour or None, extra={**self.adapter.metadata(cfg), **base_precision_metadata(cfg)},
        )
        path = request.folder / f"{request.stem}.safetensors"
        if self.files.lora_format == "peft" and kind != "lora":
            path = save_lycoris(path, self.parts.denoiser, [], save_dtype=cfg.saving.dtype, metadata=metadata,
                                denoiser_prefix=self.files.lycoris_prefix,
                                denoiser_path=self.adapter.lycoris_module_path)
        elif self.files.lora_format == "peft":
            from tuitrain.trainer.export.peft_lora import save_peft_lora

            path = save_peft_lora(path, self.handles.models(), self.handles.denoiser_name, save_dtype=cfg.saving.dtype,
                                  metadata=metadata, layout=self.adapter.lora_file_tensors)
        else:
            # All encoders, trained or not: their count decides the kohya names (lora_te_ vs lora_te1_/te2_).
            save = save_kohya_lora if kind == "lora" else save_lycoris
            path = save(path, self.parts.denoiser, self.parts.text_encoders, save_dtype=cfg.saving.dtype,
                        metadata=metadata)
        if cfg.saving.diffusers_format:  # plain LoRA only (checked in __init__)
            save_diffusers_lora(request.folder / f"{request.stem}-diffusers", type(self.parts.pipeline), self.handles,
                                save_dtype=cfg.saving.dtype)
        return path
