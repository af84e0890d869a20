"""Differences between the diffusers versions tuitrain accepts (pyproject: diffusers >= 0.30)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import torch


@lru_cache(maxsize=1)
def _reads_dtype() -> bool:
    try:
        from diffusers.utils import deprecation_utils
    except ImportError:
        return False
    return hasattr(deprecation_utils, "_resolve_dtype")


def dtype_kwargs(dtype: torch.dtype | None) -> dict[str, Any]:
    """The dtype argument of from_pretrained / from_single_file: newer diffusers renamed
    `torch_dtype` to `dtype` and warns on the old name; older ones know only `torch_dtype`."""
    if dtype is None:
        return {}
    return {"dtype": dtype} if _reads_dtype() else {"torch_dtype": dtype}
