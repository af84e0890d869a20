"""The eval loss: the denoising loss of fixed images at fixed noise and timesteps, so it moves only when the weights do.

The step loss jumps with every batch's random noise and timesteps; comparing saves by it compares
luck. Here every image is scored at `evaluation.draws` (noise, timestep) pairs drawn from generators
seeded by (training.seed, image, draw), the same at every evaluation, through the run's own objective
(so each family's timestep distribution), with dropout off and the weights a save writes (the EMA,
when on). Two sets are scored: the held-out images (dataset.holdout: never trained), and a fixed
subset of the training images, so over-fitting shows as the two numbers parting. The loss is the
plain per-sample MSE (masked like training's), without min-SNR or flow weighting: those reweigh
samples for learning, not for comparing saves.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from tuitrain.trainer.data import Sample
from tuitrain.trainer.masks import per_sample_loss

if TYPE_CHECKING:
    from tuitrain.trainer.loop import Trainer


@dataclass(frozen=True)
class EvalResult:
    """One evaluation: the held-out loss and the training-subset loss (None when that set is empty)."""

    step: int
    loss: float | None
    train_loss: float | None
    images: int
    train_images: int


def training_subset(samples: list[Sample], count: int) -> list[Sample]:
    """`count` training images spread evenly over the sample list: the same ones every evaluation."""
    if count <= 0 or not samples:
        return []
    count = min(count, len(samples))
    return [samples[i * len(samples) // count] for i in range(count)]


class Evaluator:
    """Scores a trainer's current weights; remembers the last step scored, so a save and a schedule
    falling on the same step score once."""

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer
        cfg = trainer.config.evaluation
        self.held_out = list(trainer.data.held_out)
        self.train = training_subset(trainer.data.samples, cfg.train_images) if self.held_out else []
        self.draws = cfg.draws
        self.last: EvalResult | None = None

    @property
    def active(self) -> bool:
        """Whether there is anything to score (a held-out set)."""
        return bool(self.held_out)

    def at(self, step: int, epoch: int) -> EvalResult | None:
        """Score the weights at `step` and emit the `eval` event (once a step); None without a held-out set
        and on processes other than the main one (it alone saves)."""
        if not self.active or not self.trainer.is_main:
            return None
        if self.last is not None and self.last.step == step:
            return self.last
        r = self.evaluate(step)
        self.trainer.emit("eval", step=step, epoch=epoch, loss=r.loss, train_loss=r.train_loss, images=r.images,
                          train_images=r.train_images, draws=self.draws)
        return r

    def evaluate(self, step: int) -> EvalResult:
        """Score the current weights (no event, no memory of earlier steps: what a determinism check calls)."""
        t = self.trainer
        denoiser = t.parts.denoiser
        was_training = denoiser.training
        denoiser.eval()  # LoRA / dropout layers off: the same weights give the same number
        # As a save is used: the assistant LoRA off, the weights the save writes (EMA); the text encoders on the
        # device while a held-out caption no cache holds yet is encoded.
        assistant = getattr(t, "assistant", None)
        parking = getattr(t, "text_encoder_parking", None)
        try:
            with torch.no_grad(), t.device_turn, t.weights_for_output(), \
                    assistant.off() if assistant is not None else contextlib.nullcontext(), \
                    parking.on_device() if parking is not None else contextlib.nullcontext():
                loss = self._mean(self.held_out, "held", lambda s: t.data.held_out_caption(s))
                train = self._mean(self.train, "train", lambda s: t.data.base_caption(s, random.Random(0)))
        finally:
            denoiser.train(was_training)
        self.last = EvalResult(step, loss, train, len(self.held_out), len(self.train))
        return self.last

    def _mean(self, samples: list[Sample], salt: str, caption_of) -> float | None:  # type: ignore[no-untyped-def]
        if not samples:
            return None
        t = self.trainer
        # The module itself, not accelerate's multi-process wrapper: only the main process scores, and a
        # wrapped forward may wait on the other processes (buffer broadcasts) that never join it.
        parts = dataclasses.replace(t.parts, denoiser=t.accelerator.unwrap_model(t.parts.denoiser))
        total = 0.0
        for sample in samples:
            # A fixed rng: the same flip / crop / random mask every evaluation.
            inputs = t.inputs.encode(sample, random.Random(f"eval:{salt}:{sample.concept}:{sample.path.name}"))
            conditioning = t._conditioning([caption_of(sample)], scoring=True)
            batch = t.inputs.collate([sample], [inputs], conditioning, t.device)
            mask = [inputs.loss_mask.to(t.device)] if inputs.loss_mask is not None else [None]
            for draw in range(self.draws):
                name = f"{t.config.training.seed}:eval:{salt}:{sample.concept}:{sample.path.name}:{draw}"
                seed = random.Random(name).getrandbits(63)
                gen = torch.Generator(device=t.device).manual_seed(seed)
                noised = t.objective.noise(batch.latents, gen)
                with t.accelerator.autocast():
                    pred = t.adapter.predict(parts, noised.noisy.to(t.compute_dtype), noised.timesteps, batch)
                loss = per_sample_loss(pred.float(), noised.target.float(), mask, t.config.training.unmasked_weight)
                total += float(loss.mean().item())
        return total / (len(samples) * self.draws)
