"""Loss types: squared, absolute and (scheduled) pseudo-Huber errors, reduced to one loss per sample.

The pseudo-Huber forms are kohya sd-scripts' (`conditional_loss`), after "Improving Diffusion
Models's Data-Corruption Resistance using Scheduled Pseudo-Huber Loss" (Khrapov et al. 2024):
huber = 2 d (sqrt(e^2 + d^2) - d), about e^2 for |e| << d and 2 d |e| beyond; smooth_l1 is the
same divided by d. torch's own huber_loss / smooth_l1_loss are the piecewise (not pseudo) forms
and take one scalar delta, where the scheduled Huber needs one per sample.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tuitrain.trainer.masks import weighted_per_sample

LOSS_TYPES = ("l2", "l1", "huber", "smooth_l1")


def elementwise_loss(pred: torch.Tensor, target: torch.Tensor, kind: str,
                     delta: torch.Tensor | None = None) -> torch.Tensor:
    """The error of every element, fp32; `delta` [B] for huber / smooth_l1."""
    pred, target = pred.float(), target.float()
    if kind == "l2":
        return F.mse_loss(pred, target, reduction="none")
    if kind == "l1":
        return F.l1_loss(pred, target, reduction="none")
    if kind not in ("huber", "smooth_l1"):
        raise ValueError(f"objective.loss_type: unknown {kind!r} (expected one of {', '.join(LOSS_TYPES)})")
    assert delta is not None, "huber and smooth_l1 need a delta per sample"
    d = delta.float().to(pred.device).reshape(-1, *([1] * (pred.ndim - 1)))
    squared = (pred - target) ** 2
    # sqrt(e^2 + d^2) - d written as e^2 / (sqrt(e^2 + d^2) + d): the same value without fp32's cancellation
    # for errors far below the delta (kohya's form gives 0 for e = 1e-4 at d = 1).
    pseudo = squared / (torch.sqrt(squared + d**2) + d)
    return 2 * d * pseudo if kind == "huber" else 2 * pseudo


def per_sample_loss(pred: torch.Tensor, target: torch.Tensor, loss_masks: list[torch.Tensor | None],
                    unmasked_weight: float, kind: str = "l2", delta: torch.Tensor | None = None) -> torch.Tensor:
    """The loss of each sample [B]: `kind`'s error, averaged with each sample's loss mask as weights."""
    return weighted_per_sample(elementwise_loss(pred, target, kind, delta), loss_masks, unmasked_weight)
