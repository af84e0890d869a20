"""[training]: the method, the length of the run, the batch and the learning rate."""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from tuitrain.config.errors import quote
from tuitrain.config.fields import Section, option
from tuitrain.config.sections.common import MAX_EPOCHS, MAX_SEED, MAX_STEPS


class TrainingSection(Section):
    group = "training"

    method: Literal["lora", "embedding", "finetune"] = option(
        "lora", "What to train: lora (an adapter), embedding (textual inversion), finetune (the model).",
        level="essential",
    )
    epochs: int = option(
        10, "Passes over the data set (ignored when max_steps is set).", level="essential", ge=1, le=MAX_EPOCHS
    )
    max_steps: int | None = option(
        None, "Stop after this many optimizer steps instead of counting epochs.", ge=1, le=MAX_STEPS
    )
    batch_size: int = option(1, "Images per step per GPU.", level="essential", ge=1, le=1024)
    gradient_accumulation: int = option(1, "Accumulate gradients over this many batches per optimizer step.", ge=1, le=1024)
    learning_rate: float = option(
        1e-4, "Learning rate of the trained weights (use 1.0 with Prodigy).", level="essential", gt=0.0, le=10.0
    )
    lr_scheduler: Literal[
        "constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts", "cosine_with_min_lr",
        "polynomial", "rex",
    ] = option(
        "constant",
        "Learning-rate schedule over the run (the config editor draws its curve): constant; constant_with_warmup; "
        "linear (down to 0); cosine (down to 0); cosine_with_restarts (lr_cycles); cosine_with_min_lr (down to "
        "lr_min_ratio); polynomial ((1 - progress) ** lr_power, down to lr_min_ratio); rex (REX, Chen et al. "
        "2021: stays high longer than linear, then falls to lr_min_ratio). All but constant warm up first.",
    )
    lr_warmup_steps: int = option(0, "Steps of linear warm-up from 0 to the learning rate.", ge=0, le=MAX_STEPS)
    lr_warmup_fraction: float = option(
        0.0,
        "Warm-up as a fraction of the run's steps (0.05: the first 5%), as kohya's lr_warmup_steps < 1 and "
        "OneTrainer's ratio; 0: lr_warmup_steps counts instead. Set one of the two.",
        ge=0.0, lt=1.0,
    )
    lr_cycles: int = option(1, "Restarts for cosine_with_restarts.", ge=1, le=1000)
    lr_power: float = option(
        1.0, "polynomial: the decay's power (1: linear, 2: falls fast then slowly; kohya's lr_scheduler_power).",
        gt=0.0, le=100.0,
    )
    lr_min_ratio: float = option(
        0.0,
        "cosine_with_min_lr, polynomial and rex: the last learning rate as a fraction of learning_rate "
        "(0.1: ends at a tenth).",
        ge=0.0, lt=1.0,
    )
    text_encoder_max_steps: int | None = option(
        None,
        "Train the text encoder(s) for this many steps only, then freeze them (lora.train_text_encoder or "
        "finetune.train_text_encoder; kohya's stop_text_encoder_training). Unset: for the whole run.",
        ge=1, le=MAX_STEPS,
    )
    text_encoder_max_epochs: int | None = option(
        None,
        "Train the text encoder(s) for this many epochs only, then freeze them (OneTrainer's 'train text encoder "
        "for N epochs'). Unset: for the whole run. Set this or text_encoder_max_steps.",
        ge=1, le=MAX_EPOCHS,
    )
    max_grad_norm: float = option(1.0, "Clip gradients to this norm (0: no clipping).", ge=0.0, le=1e6)
    mixed_precision: Literal["auto", "bf16", "fp16", "fp32"] = option(
        "auto", "Compute precision. auto: bf16 on GPUs that support it, fp16 on older GPUs, fp32 on CPU."
    )
    gradient_checkpointing: bool = option(False, "Recompute activations in the backward pass: less VRAM, ~20-30% slower.")
    noise_offset: float = option(0.0, "Noise offset (0.05-0.1 helps very dark and bright images; 0: off).", ge=0.0, le=1.0)
    min_snr_gamma: float = option(0.0, "Min-SNR loss weighting gamma (5 is common; 0: off).", ge=0.0, le=100.0)
    masked_loss: bool = option(
        False,
        "Weight the loss by each image's mask (<image>-masklabel.png: white = learn, black = ignore); "
        "images without a mask file weigh everywhere the same.",
    )
    unmasked_weight: float = option(
        0.1, "With masked_loss: the loss weight of areas outside the mask (0: ignore them entirely).", ge=0.0, le=1.0
    )
    seed: int = option(
        42, "Seed for noise, shuffling and augmentations: the same seed repeats the run.", ge=0, le=MAX_SEED
    )
    device: str = option("auto", "Device to train on: auto, cpu, cuda, cuda:1, ...")

    @model_validator(mode="after")
    def _one_way_to_say_it(self) -> TrainingSection:
        if self.lr_warmup_fraction and self.lr_warmup_steps:
            raise ValueError(
                f"lr_warmup_fraction: set it or lr_warmup_steps, not both (lr_warmup_steps = {self.lr_warmup_steps}, "
                f"lr_warmup_fraction = {self.lr_warmup_fraction:g})"
            )
        if self.text_encoder_max_steps is not None and self.text_encoder_max_epochs is not None:
            raise ValueError(
                "text_encoder_max_epochs: set it or text_encoder_max_steps, not both "
                f"(got {self.text_encoder_max_epochs} epochs and {self.text_encoder_max_steps} steps)"
            )
        return self

    @model_validator(mode="after")
    def _device_name(self) -> TrainingSection:
        d = self.device
        ok = d in ("auto", "cpu", "cuda", "mps") or (d.startswith("cuda:") and d[5:].isdigit())
        if not ok:
            raise ValueError(f"device: must be auto, cpu, cuda, cuda:N or mps, got {quote(d)}")
        return self
