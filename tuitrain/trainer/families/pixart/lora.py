"""Load a PixArt LoRA file (`transformer.<module>.lora_A/B.weight`, scale folded into lora_B) with peft.

diffusers has no LoRA loader for PixArt (no PeftAdapterMixin on PixArtTransformer2DModel, no
load_lora_weights on its pipelines), so this is the loader a diffusers user writes: peft's own
inject_adapter_in_model + set_peft_model_state_dict, with lora_alpha = rank because the file
carries the scale already. The tests load tuitrain's files back through it.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from tuitrain.trainer.export.peft_lora import load_folded_lora


def load_lora_into(transformer: torch.nn.Module, path: str | os.PathLike[str], adapter_name: str = "default") -> None:
    """Add the file's LoRA to `transformer` (a PixArtTransformer2DModel) as peft adapter `adapter_name`."""
    from safetensors.torch import load_file

    prefix = "transformer."
    state = {k[len(prefix):]: v for k, v in load_file(str(path)).items() if k.startswith(prefix)}
    load_folded_lora(transformer, state, adapter_name, "transformer")


def load_lora_weights(pipeline: Any, path: str | os.PathLike[str]) -> None:
    """The pipeline-level call diffusers' other families have: the LoRA goes into pipeline.transformer."""
    load_lora_into(pipeline.transformer, path)
