"""[distributed]: training one run with several processes, one per GPU (DDP through accelerate and torchrun,
or FSDP for full fine-tunes whose training state does not fit one GPU)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal

from pydantic import field_validator

if TYPE_CHECKING:
    from tuitrain.config.schema import Config

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

    strategy: Literal["ddp", "fsdp"] = option(
        "ddp",
        "How the processes share the model. ddp: each GPU holds the whole model and its training state (LoRA, "
        "LoKr, LoHa, embeddings, and fine-tunes that fit one GPU). fsdp: a full fine-tune's denoiser weights, "
        "gradients and AdamW state are split across the GPUs (PyTorch FSDP2), so each holds about 1/N of its "
        "training state; each GPU still loads the whole model once at start, and saves, samples and backups "
        "gather the full weights to the first process. Needs training.method = 'finetune' and optimizer.name = "
        "'adamw'. Ignored with one process.",
    )

    def fsdp_problem(self, config: Config) -> str:
        """Why this config cannot train with strategy = 'fsdp' (one line naming the key), or "" when it can.

        What was not measured with sharded weights is refused rather than guessed: fp16's gradient scaler
        (needs a GPU), torch.compile over sharded blocks, the optimizers other than torch's AdamW (Prodigy and
        the 8-bit ones keep state or statistics per whole tensor), and channels-last weights (FSDP2 shards
        contiguous parameters only: 'FSDP does not support non-contiguous parameters yet')."""
        if self.strategy != "fsdp" or self.processes == 1:
            return ""
        method = config.training.method
        if method != "finetune":
            kind = config.lora.type if method == "lora" else method
            return (f"distributed.strategy: 'fsdp' shards a full fine-tune's weights; a {kind} run trains small "
                    "weights that every GPU holds anyway: set distributed.strategy = 'ddp'")
        if config.optimizer.name != "adamw":
            return (f"optimizer.name: {config.optimizer.name!r} is not used on sharded weights here; "
                    "distributed.strategy = 'fsdp' trains with optimizer.name = 'adamw' (or set strategy = 'ddp')")
        if config.training.mixed_precision == "fp16":
            return ("training.mixed_precision: fp16's gradient scaling is not used with distributed.strategy = "
                    "'fsdp' here; use bf16 (or fp32)")
        if config.ema.mode == "cpu":
            return ("ema.mode: 'cpu' is not used with distributed.strategy = 'fsdp': the average is sharded like the "
                    "weights (1/N of them per GPU); set ema.mode = 'gpu'")
        if config.performance.compile != "off":
            return ("performance.compile: compiling sharded blocks is not supported with distributed.strategy = "
                    "'fsdp'; set performance.compile = 'off'")
        if config.performance.channels_last == "on":
            return ("performance.channels_last: FSDP shards contiguous weights only; set "
                    "performance.channels_last = 'auto' or 'off' with distributed.strategy = 'fsdp'")
        return ""

    @field_validator("gpus")
    @classmethod
    def _gpu_list(cls, value: str) -> str:
        if value and not re.fullmatch(r"\s*\d+\s*(,\s*\d+\s*)*", value):
            raise ValueError(f"must be GPU numbers separated by commas, e.g. '0,1', got {quote(value)}")
        return value.replace(" ", "")

    @property
    def gpu_ids(self) -> list[int]:
        return [int(g) for g in self.gpus.split(",")] if self.gpus else []
