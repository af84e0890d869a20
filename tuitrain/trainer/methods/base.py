"""The interface every training method implements; the loop calls only these.

A method decides which weights train, how they are kept in a backup, and which
files a save writes. It is orthogonal to the family: the family adapter says how a
model is run, the method says what of it changes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from tuitrain.config import Config
from tuitrain.trainer.families.base import FamilyAdapter, ModelParts

if TYPE_CHECKING:
    from tuitrain.trainer.data import TrainingData


@dataclass
class SaveRequest:
    """One save: where, under which file stem, and what the metadata should record."""

    folder: Path  # the run's output/ folder
    stem: str  # file name stem: the run's name, plus -stepNNNNNN for intermediate saves
    final: bool
    step: int
    epoch: int
    started_at: float  # time.time() when training started (for metadata)


class TrainingMethod(ABC):
    """What trains, how it survives a resume, and how it is saved."""

    #: True when text encoders receive gradients: their outputs can then not be cached.
    trains_text_encoders: bool = False

    def __init__(self, config: Config, parts: ModelParts, adapter: FamilyAdapter) -> None:
        self.config = config
        self.parts = parts
        self.adapter = adapter

    @abstractmethod
    def trainable_parameters(self) -> list[nn.Parameter]:
        """Every parameter the optimizer updates (also what EMA averages)."""

    @abstractmethod
    def param_groups(self, lr: float) -> list[dict[str, Any]]:
        """Optimizer parameter groups; `lr` is training.learning_rate."""

    @abstractmethod
    def state_dict(self) -> dict[str, torch.Tensor]:
        """The trained weights, by name, for backups (saved with safetensors)."""

    @abstractmethod
    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """Put backed-up weights back (strict: a mismatch is an error, not a partial resume)."""

    @abstractmethod
    def save(self, request: SaveRequest) -> Path:
        """Write the outputs for a save atomically; return the main file (what the user loads)."""

    def check_data(self, data: TrainingData) -> None:
        """Refuse training data this method cannot learn from (called once, at setup)."""

    def prepare_caption(self, caption: str) -> str:
        """The caption the text encoder sees (embeddings expand their token to N vectors)."""
        return caption

    def after_optimizer_step(self) -> None:
        """Called after every optimizer step (embeddings restore the rows that must not change)."""

    def text_encoder_parameters(self) -> list[nn.Parameter]:
        """The trained parameters that belong to the text encoders (none unless the method trains them)."""
        return []

    def freeze_text_encoders(self) -> None:
        """Stop training the text encoders (training.text_encoder_max_steps / _epochs): their parameters get
        no gradients from now on, which every optimizer skips, and they are encoded without autograd. The
        parameters stay in the optimizer, the backups and the saves, so a resume finds what it left."""
        for param in self.text_encoder_parameters():
            param.requires_grad_(False)
            param.grad = None
        self.trains_text_encoders = False

    def modules_to_prepare(self) -> list[nn.Module]:
        """Trained modules besides the denoiser that accelerate should prepare."""
        return []

    @classmethod
    def full_precision_components(cls, config: Config) -> frozenset[str]:
        """The components ("denoiser", "text_encoders") the loop must not cast to the compute dtype.

        Asked before the method is built. A fine-tune trains (and saves) these weights: a
        round trip through bf16 would round every base weight before the first step.
        """
        return frozenset()
