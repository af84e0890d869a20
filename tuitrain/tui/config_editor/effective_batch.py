"""The effective batch of the config in the editor: what one optimizer step averages over.

batch_size x gradient_accumulation x distributed.processes (each process trains its own batches and DDP
averages their gradients; trainer/data.shard). The side panel shows it beside the step count, and says
beside the learning-rate curve that the rate is used as given for that batch: tuitrain never scales it
when the batch or the process count changes (a user moving from 1 to 4 GPUs decides that).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _count(value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None


def processes(get: Callable[[str], Any]) -> int | None:
    """The process count the run will start: distributed.processes, or for 0 ("one per visible GPU") the
    GPUs listed in distributed.gpus; None when only CUDA could tell (the editor never asks it)."""
    count = _count(get("distributed.processes"))
    if count is None:
        return None
    if count == 0:
        listed = [g for g in str(get("distributed.gpus") or "").split(",") if g.strip()]
        return len(listed) or None
    return count


def effective_batch(get: Callable[[str], Any]) -> int | None:
    """Images per optimizer step, or None when a value is not a number yet (or the GPU count is unknown)."""
    batch, accumulation = _count(get("training.batch_size")), _count(get("training.gradient_accumulation"))
    procs = processes(get)
    if batch is None or accumulation is None or procs is None:
        return None
    return batch * accumulation * procs


def effective_batch_text(get: Callable[[str], Any]) -> str:
    """One line for the panel: the product spelled out, e.g. 'effective batch: 4 x 2 accumulation x 2
    processes = 16 images per step'."""
    batch, accumulation = _count(get("training.batch_size")), _count(get("training.gradient_accumulation"))
    if batch is None or accumulation is None:
        return "effective batch: fix batch_size and gradient_accumulation to count it"
    parts = [str(batch)]
    if accumulation != 1:
        parts.append(f"{accumulation} accumulation")
    procs = processes(get)
    if procs is None:
        parts.append("every visible GPU")
        return f"effective batch: {' x '.join(parts)} (one process per GPU)"
    if procs != 1:
        parts.append(f"{procs} processes")
    total = batch * accumulation * procs
    spelled = f"{' x '.join(parts)} = " if len(parts) > 1 else ""
    return f"effective batch: {spelled}{total} image{'s' if total != 1 else ''} per step"


def lr_note(get: Callable[[str], Any]) -> str:
    """What the learning rate is for: the effective batch as configured; never scaled for it."""
    total = effective_batch(get)
    batch = f"{total} image{'s' if total != 1 else ''} per step" if total is not None else "the effective batch"
    return f"used as given for {batch}: never scaled with the batch or the process count"
