"""training.method = "finetune": the UNet's own weights train, optionally the text encoders too.

The trained modules keep fp32 master weights while frozen ones stay in the compute
dtype (accelerate's autocast runs the maths in bf16/fp16), so small updates at
fine-tune learning rates are not rounded away. Backups hold the full weights of every
trained module, prefixed by its diffusers component name.

Saves: a single-file original-layout checkpoint (export/single_file.py), which A1111,
ComfyUI and diffusers' from_single_file load, and, on the final save, a diffusers
folder (`<stem>-diffusers/`, pipeline.save_pretrained). Intermediate saves write only
the single file, because a second full copy of the model at every save costs disk for
nothing the single file does not already hold; with finetune.single_file off they write
the folder instead, so every save leaves something loadable. Both are written in
saving.dtype and atomically (the folder is built beside the target and renamed in).
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tuitrain.config import Config
from tuitrain.families import FAMILIES
from tuitrain.trainer.export.atomic import fsync_dir, fsync_path
from tuitrain.trainer.export.kohya_lora import SAVE_DTYPES
from tuitrain.trainer.families import family_files
from tuitrain.trainer.families.base import FamilyAdapter, ModelParts
from tuitrain.trainer.errors import TrainingError
from tuitrain.trainer.fsdp import is_sharded, load_full_state
from tuitrain.trainer.methods.base import SaveRequest, TrainingMethod
from tuitrain.trainer.methods.peft_layers import TEXT_ENCODER_NAMES


def _error(message: str) -> Exception:
    return TrainingError(message)


class FinetuneMethod(TrainingMethod):
    """Full fine-tune of the denoiser (and, with finetune.train_text_encoder, the text encoders)."""

    def __init__(self, config: Config, parts: ModelParts, adapter: FamilyAdapter) -> None:
        super().__init__(config, parts, adapter)
        cfg = config.finetune
        self.trains_text_encoders = cfg.train_text_encoder
        # Component name -> module, in backup order; the unwrapped modules (accelerate may wrap the
        # denoiser later), so backup keys never carry a wrapper's prefix.
        self.denoiser_name = family_files(config.model.family).denoiser_component
        self.models: dict[str, nn.Module] = {self.denoiser_name: parts.denoiser}
        if cfg.train_text_encoder:
            # The family's trainable encoders only (Flux, SD3: the CLIPs; T5-XXL's 4.7B weights stay frozen).
            self.models.update(zip(TEXT_ENCODER_NAMES, parts.text_encoders[: adapter.trainable_text_encoders]))
        # optimizer.name = adamw_bf16 with bf16 compute: the weights train in bf16 (half of fp32's memory, no
        # master copy); its stochastic rounding keeps the updates rounding to nearest would lose.
        bf16 = config.optimizer.name == "adamw_bf16" and config.training.mixed_precision == "bf16"
        for model in self.models.values():
            model.to(dtype=torch.bfloat16 if bf16 else torch.float32)
            model.requires_grad_(True)
        if cfg.train_text_encoder and config.training.gradient_checkpointing:
            # The loop enables it for the denoiser. transformers checkpoints only in training mode;
            # SD's CLIP encoders have no dropout, so train() changes nothing else. Non-reentrant:
            # gradients reach the weights whatever requires grad among the inputs.
            for encoder in self.text_encoders():
                encoder.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
                encoder.train()

    @classmethod
    def full_precision_components(cls, config: Config) -> frozenset[str]:
        """Components a loop that asks first should leave uncast: a cast to bf16 rounds every base weight.

        The text encoders too when frozen: the saved checkpoint carries them, and it should
        carry the base model's weights, not their bf16 roundings.
        """
        return frozenset({"denoiser", "text_encoders"})

    def text_encoders(self) -> list[nn.Module]:
        return [model for name, model in self.models.items() if name != self.denoiser_name]

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [param for model in self.models.values() for param in model.parameters()]

    def text_encoder_parameters(self) -> list[nn.Parameter]:
        return [param for model in self.text_encoders() for param in model.parameters()]

    def param_groups(self, lr: float) -> list[dict[str, Any]]:
        groups: list[dict[str, Any]] = [{"params": list(self.models[self.denoiser_name].parameters()), "lr": lr}]
        encoders = [param for model in self.text_encoders() for param in model.parameters()]
        if encoders:
            groups.append({"params": encoders, "lr": self.config.finetune.text_encoder_lr or lr})
        return groups

    def modules_to_prepare(self) -> list[nn.Module]:
        # accelerate wraps their forward in autocast: fp32 weights, mixed-precision maths.
        return self.text_encoders()

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {
            f"{name}.{key}": value.detach()
            for name, model in self.models.items()
            for key, value in model.state_dict().items()
        }

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        by_model: dict[str, dict[str, torch.Tensor]] = {name: {} for name in self.models}
        for key, value in state.items():
            component, _, rest = key.partition(".")
            if component not in by_model:
                raise _error(
                    f"the backup has {component} weights, but this run does not train {component} "
                    "(was finetune.train_text_encoder changed since the backup was made?)"
                )
            by_model[component][rest] = value
        for name, model in self.models.items():
            expected, given = model.state_dict(), by_model[name]
            missing, extra = sorted(expected.keys() - given.keys()), sorted(given.keys() - expected.keys())
            if not given:
                raise _error(
                    f"the backup has no {name} weights, but this run trains {name} "
                    "(was finetune.train_text_encoder changed since the backup was made?)"
                )
            if missing or extra:
                raise _error(f"the backup's {name} weights do not fit this model: missing {missing[:3]}, "
                             f"unexpected {extra[:3]} (was model.base changed?)")
            wrong = [k for k in expected if expected[k].shape != given[k].shape]
            if wrong:
                raise _error(f"the backup's {name} weights do not fit this model: {wrong[0]} is "
                             f"{tuple(given[wrong[0]].shape)}, the model's {tuple(expected[wrong[0]].shape)} "
                             "(was model.base changed?)")
            if is_sharded(model):  # distributed.strategy = 'fsdp': every rank keeps its shard of the full weights
                load_full_state(model, given)
            else:
                model.load_state_dict(given, strict=True)

    def save(self, request: SaveRequest) -> Path:
        from tuitrain.trainer.export.single_file import save_denoiser_file, save_single_file

        cfg = self.config
        dtype = SAVE_DTYPES[cfg.saving.dtype]
        pipeline = self.parts.pipeline
        file = request.folder / f"{request.stem}.safetensors"
        folder = request.folder / f"{request.stem}-diffusers"
        # Without the single file (turned off, or a family with no single-file layout), every save writes
        # the folder, so each one leaves a loadable model. A family whose denoiser alone has a file
        # layout (FLUX.1: BFL's) writes that: what ComfyUI and Forge load as a diffusion model.
        files = family_files(cfg.model.family)
        single_file = cfg.finetune.single_file and (files.single_file or files.denoiser_file)
        # A denoiser-alone file holds no text encoder: when they train, the folder is written at every save.
        # The setting, not trains_text_encoders: encoders frozen part-way (training.text_encoder_max_steps) trained before.
        trains_encoders_outside_file = (files.denoiser_file and not files.single_file
                                        and self.config.finetune.train_text_encoder)
        write_folder = not single_file or trains_encoders_outside_file or (cfg.finetune.diffusers_folder and request.final)
        metadata = {
            "modelspec.title": request.stem,
            "modelspec.date": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(request.started_at)),
            "modelspec.resolution": f"{cfg.data.resolution}x{cfg.data.resolution}",
            "ss_steps": str(request.step), "ss_epoch": str(request.epoch),
        }
        with _scheduler_predicting(pipeline, self.parts.prediction_type):
            if single_file and files.single_file:
                save_single_file(pipeline, cfg.model.family, file, dtype, metadata=metadata)
            elif single_file:
                flavour = FAMILIES[cfg.model.family].flavour(self.parts.flavour)
                metadata["modelspec.architecture"] = flavour.modelspec_architecture
                state = self.adapter.denoiser_file_state(self.parts.denoiser)
                save_denoiser_file(state, cfg.model.family, file, dtype, metadata=metadata)
            if write_folder:
                save_diffusers_folder(pipeline, folder, dtype)
        return file if single_file else folder


@contextmanager
def _scheduler_predicting(pipeline: Any, prediction_type: str) -> Iterator[None]:
    """The pipeline's scheduler records the prediction type trained (model.prediction may override the base's)."""
    original = pipeline.scheduler
    if prediction_type != "flow" and original.config.get("prediction_type") != prediction_type:
        pipeline.scheduler = type(original).from_config(original.config, prediction_type=prediction_type)
    try:
        yield
    finally:
        pipeline.scheduler = original


@contextmanager
def _state_dicts_as(modules: Iterable[nn.Module], dtype: torch.dtype) -> Iterator[None]:
    """Within the block, each module's state_dict() holds host copies in `dtype` (floating tensors only).

    What save_pretrained writes is state_dict(); casting there, tensor by tensor, saves in
    saving.dtype without a second copy of the model or touching the live fp32 weights.
    """

    def cast(module: nn.Module, state: dict[str, Any], prefix: str, local_metadata: Any) -> None:
        for key, value in state.items():
            if key.startswith(prefix) and isinstance(value, torch.Tensor) and value.is_floating_point():
                state[key] = value.detach().to("cpu", dtype)

    handles = [module.register_state_dict_post_hook(cast) for module in modules]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def save_diffusers_folder(pipeline: Any, target: Path, dtype: torch.dtype) -> Path:
    """pipeline.save_pretrained(target) in `dtype`, atomically: built in a hidden sibling, then renamed in.

    A folder cannot be os.replace'd over a non-empty one, so an existing target is first
    renamed aside and deleted after the new one is in place: at every moment one complete
    folder exists, under the target's name or the aside name.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tag = f"{os.getpid()}.{secrets.token_hex(4)}"
    temp = target.with_name(f".{target.name}.{tag}.tmp")
    aside = target.with_name(f".{target.name}.{tag}.old")
    temp.mkdir()  # not mkdtemp: that makes the folder 0700
    try:
        modules = [c for c in pipeline.components.values() if isinstance(c, nn.Module)]
        with _state_dicts_as(modules, dtype):
            pipeline.save_pretrained(temp, safe_serialization=True)
        for path in sorted(temp.rglob("*")):
            if path.is_file():
                fsync_path(path)
        for folder in [temp, *(p for p in temp.rglob("*") if p.is_dir())]:
            fsync_dir(folder)
        if target.exists():
            os.replace(target, aside)
        os.replace(temp, target)
        fsync_dir(target.parent)
    except BaseException:
        if aside.exists() and not target.exists():
            os.replace(aside, target)  # the old folder goes back where it was
        shutil.rmtree(temp, ignore_errors=True)
        raise
    shutil.rmtree(aside, ignore_errors=True)
    return target
