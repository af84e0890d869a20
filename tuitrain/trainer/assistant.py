"""An assistant LoRA: a frozen LoRA on the base model while training, left out of samples and saves.

ostris' idea (ai-toolkit's `assistant_lora_path`, his FLUX.1-schnell training adapter): training a LoRA on
a step-distilled model breaks its distillation, so a de-distilling LoRA sits on the base while the user's
LoRA trains and absorbs the damage; at inference the base runs without it, and the user's LoRA works on
plain schnell. The same holds for any "make the base easier to train" LoRA.

Loaded with the pipeline's own `load_lora_weights` (every file layout diffusers reads: diffusers/peft,
kohya, BFL, XLabs), as a second peft adapter beside the trained one. tuitrain's exporters, backups and
optimizer only ever read the trained adapter (peft_layers.ADAPTER), so the assistant never reaches a file.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tuitrain.trainer.errors import TrainingError
from tuitrain.trainer.families.base import ModelParts
from tuitrain.trainer.methods.peft_layers import ADAPTER

NAME = "assistant"


class Assistant:
    """The loaded assistant LoRA: active in training steps, scale 0 while samples are drawn."""

    def __init__(self, parts: ModelParts, path: Path, scale: float) -> None:
        from peft.tuners.lora import LoraLayer

        if not path.is_file():
            raise TrainingError(f"lora.assistant_lora: {path} is not a file")
        try:
            parts.pipeline.load_lora_weights(str(path), adapter_name=NAME)
        except (ValueError, KeyError, RuntimeError, OSError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise TrainingError(f"lora.assistant_lora: {path.name} does not load on this model: {first}") from exc
        self.scale = scale
        stat = path.stat()
        self.identity = f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:{scale}"
        self.adapts_text_encoders = any(NAME in m.lora_A for encoder in parts.text_encoders for m in encoder.modules()
                                        if isinstance(m, LoraLayer))
        self.layers = [m for m in _models(parts) for m in m.modules()
                       if isinstance(m, LoraLayer) and NAME in m.lora_A]
        if not self.layers:
            raise TrainingError(f"lora.assistant_lora: {path.name} adapts no layer of this model")
        for layer in self.layers:
            # Both adapters run in every step; set_adapter marks the named ones trainable, so the
            # assistant is frozen again right after.
            layer.set_adapter([n for n in (ADAPTER, NAME) if n in layer.lora_A])
            layer.set_scale(NAME, scale)
            for param in (*layer.lora_A[NAME].parameters(), *layer.lora_B[NAME].parameters()):
                param.requires_grad_(False)

    @contextmanager
    def off(self) -> Iterator[None]:
        """Run the model as it will be used: the base without the assistant (scale 0), then back on."""
        for layer in self.layers:
            layer.set_scale(NAME, 0.0)
        try:
            yield
        finally:
            for layer in self.layers:
                layer.set_scale(NAME, self.scale)


def _models(parts: ModelParts) -> list:  # type: ignore[type-arg]
    return [parts.denoiser, *parts.text_encoders]
