"""[distributed]: training one run with several processes, one per GPU (DDP through accelerate and torchrun)."""

from __future__ import annotations

import re

from pydantic import field_validator

from tuitrain.config.errors import quote
from tuitrain.config.fields import Section, option


class DistributedSection(Section):
    group = "training"

    processes: int = option(
        1,
        "Training processes, one per GPU: each trains its share of every epoch's batches and their gradients are "
        "averaged every step (DDP), so N GPUs train the same run about N times faster. The effective batch is "
        "training.batch_size x gradient_accumulation x processes; the learning rate is not scaled for you. 0: "
        "one per visible GPU. A run resumes with the process count it was started with.",
        ge=0, le=64,
    )
    gpus: str = option(
        "",
        "Which GPUs the processes use, e.g. '0,1' or '2,3' (CUDA's numbering, as CUDA_VISIBLE_DEVICES). Empty: "
        "the first `processes` visible ones.",
    )

    @field_validator("gpus")
    @classmethod
    def _gpu_list(cls, value: str) -> str:
        if value and not re.fullmatch(r"\s*\d+\s*(,\s*\d+\s*)*", value):
            raise ValueError(f"must be GPU numbers separated by commas, e.g. '0,1', got {quote(value)}")
        return value.replace(" ", "")

    @property
    def gpu_ids(self) -> list[int]:
        return [int(g) for g in self.gpus.split(",")] if self.gpus else []
