"""[performance] applied to a run: TF32, channels-last UNets, torch.compile of the denoiser, the SDPA kernel.

Everything here goes through PyTorch's and diffusers' own switches (torch.compile, diffusers'
compile_repeated_blocks, torch.nn.attention.sdpa_kernel), so a library release that makes them faster
makes tuitrain faster; nothing is re-implemented. Applied once, after the method has put its adapters
into the model (a compiled block must see the LoRA layers it runs).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
from torch import nn

from tuitrain.trainer.errors import TrainingError
from tuitrain.trainer.families.base import ModelParts

# [performance].attention -> PyTorch's SDPA backends.
_KERNELS = {"math": "MATH", "efficient": "EFFICIENT_ATTENTION", "flash": "FLASH_ATTENTION",
            "cudnn": "CUDNN_ATTENTION"}
_CUDA_ONLY = ("efficient", "cudnn")


def repeated_block_classes(model: nn.Module) -> list[str]:
    """The class names of the model's repeated blocks: diffusers' own `_repeated_blocks` where the model
    declares them (Flux, UNets), else the class of every ModuleList whose items all share one class and
    hold parameters (SD3's JointTransformerBlock, PixArt's BasicTransformerBlock)."""
    declared = list(getattr(model, "_repeated_blocks", None) or [])
    if declared:
        return declared
    found: list[str] = []
    for module in model.modules():
        if isinstance(module, nn.ModuleList) and len(module) > 1:
            kinds = {type(m).__name__ for m in module}
            if len(kinds) == 1 and any(True for _ in module[0].parameters()):
                found.extend(kinds - set(found))
    return found


class Performance:
    """The run's [performance] settings, applied to its model; `attention()` wraps each step and sample."""

    def __init__(self, settings, parts: ModelParts, device: torch.device, log: Callable[[str], None]) -> None:  # type: ignore[no-untyped-def]
        self.settings = settings
        self.compiled = 0  # modules compiled (0: eager)
        if settings.attention in _CUDA_ONLY and device.type != "cuda":
            raise TrainingError(
                f"performance.attention: {settings.attention!r} is a CUDA kernel, and this run trains on "
                f"{device.type}; use 'auto' (or 'math', or 'flash', which PyTorch also has for CPUs)"
            )
        if settings.compile_backend == "cudagraphs" and device.type != "cuda":
            raise TrainingError("performance.compile_backend: 'cudagraphs' replays CUDA graphs and needs a CUDA "
                                f"GPU; this run trains on {device.type}: use 'inductor'")
        if device.type == "cuda" and settings.tf32:
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        denoiser = parts.denoiser
        is_unet = any(isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1) for m in denoiser.modules())
        channels_last = settings.channels_last == "on" or (settings.channels_last == "auto" and is_unet
                                                             and device.type == "cuda")
        if channels_last:
            denoiser.to(memory_format=torch.channels_last)
        if settings.compile != "off":
            self.compiled = compile_denoiser(denoiser, settings.compile, settings.compile_backend, log)

    @contextlib.contextmanager
    def attention(self) -> Iterator[None]:
        """The configured SDPA kernel for what runs inside (a step's forward and backward, a sample)."""
        if self.settings.attention == "auto":
            yield
            return
        from torch.nn.attention import SDPBackend, sdpa_kernel

        with sdpa_kernel([getattr(SDPBackend, _KERNELS[self.settings.attention])]):
            yield


def compile_denoiser(denoiser: nn.Module, mode: str, backend: str, log: Callable[[str], None]) -> int:
    """torch.compile the denoiser in place (mode "blocks": each repeated block; "full": the whole model);
    the number of modules compiled. Used by the trainer and by bench/train_gpu.py --compile."""
    import torch._dynamo

    # Each aspect bucket is a new input shape: a recompile until dynamo marks the sizes dynamic. The
    # default limit (8) would fall back to eager silently after a few buckets.
    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
    if mode == "full":
        denoiser.compile(backend=backend)
        compiled, what = 1, f"the whole {type(denoiser).__name__}"
    else:
        classes = repeated_block_classes(denoiser)
        blocks = [m for m in denoiser.modules() if type(m).__name__ in classes]
        if not blocks:
            raise TrainingError(f"performance.compile: 'blocks' found no repeated blocks in "
                                f"{type(denoiser).__name__}; use 'full'")
        for block in blocks:  # nn.Module.compile works in place: names, state dicts and hooks stay as they are
            block.compile(backend=backend)
        compiled, what = len(blocks), f"{len(blocks)} blocks ({', '.join(classes)})"
    log(f"performance.compile: {what} compile with {backend} in the first steps (and once per new bucket "
        "size); step times settle after that")
    return compiled
