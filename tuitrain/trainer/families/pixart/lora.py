"""Load a PixArt LoRA file (`transformer.<module>.lora_A/B.weight`, scale folded into lora_B) with peft.

diffusers has no LoRA loader for PixArt (no PeftAdapterMixin on PixArtTransformer2DModel, no
load_lora_weights on its pipelines), so this is the loader a diffusers user writes: peft's own
inject_adapter_in_model + set_peft_model_state_dict, with lora_alpha = rank because the file
carries the scale already. The tests load tuitrain's files back through it.
"""

from __future__ import annotations

import os
import re
from typing import Any

import torch


def lora_config_for(state: dict[str, torch.Tensor]) -> Any:
    """The peft LoraConfig a folded-scale file describes: its modules, per-module ranks, alpha = rank."""
    from peft import LoraConfig

    ranks = {k[: -len(".lora_A.weight")]: int(v.shape[0]) for k, v in state.items() if k.endswith(".lora_A.weight")}
    if not ranks:
        raise ValueError("no lora_A weights in the file")
    rank = max(set(ranks.values()), key=list(ranks.values()).count)
    others = {re.escape(name): r for name, r in ranks.items() if r != rank}
    return LoraConfig(r=rank, lora_alpha=rank, target_modules=sorted(ranks), rank_pattern=others,
                      alpha_pattern=dict(others))


def load_lora_into(transformer: torch.nn.Module, path: str | os.PathLike[str], adapter_name: str = "default") -> None:
    """Add the file's LoRA to `transformer` (a PixArtTransformer2DModel) as peft adapter `adapter_name`."""
    from peft import inject_adapter_in_model, set_peft_model_state_dict
    from safetensors.torch import load_file

    prefix = "transformer."
    state = {k[len(prefix):]: v for k, v in load_file(str(path)).items() if k.startswith(prefix)}
    inject_adapter_in_model(lora_config_for(state), transformer, adapter_name=adapter_name)
    result = set_peft_model_state_dict(transformer, state, adapter_name=adapter_name)
    unexpected = getattr(result, "unexpected_keys", None) or []
    if unexpected:
        raise ValueError(f"the LoRA file does not fit the transformer: unexpected {unexpected[:3]}")


def load_lora_weights(pipeline: Any, path: str | os.PathLike[str]) -> None:
    """The pipeline-level call diffusers' other families have: the LoRA goes into pipeline.transformer."""
    load_lora_into(pipeline.transformer, path)
