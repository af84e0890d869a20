"""One run on several processes (distributed.processes): what the loop does differently, in one place.

The engine is the field's: torchrun starts the processes (trainer/multi.py), accelerate sets up the process
group (gloo on CPUs, NCCL on GPUs) and wraps trained models in PyTorch's DistributedDataParallel, which
averages gradients during backward. What tuitrain adds is what a long, detachable run needs:

- one voice: only rank 0 writes events, saves, samples and backups and listens on the socket; each step
  it broadcasts the commands it received (pause, stop, save, ...), so every rank acts on them at the same
  step and no rank is left waiting in a collective;
- one loss: the step's loss is averaged over the ranks in the same transfer that reads it to the host;
- one story when a rank dies: each rank writes its error to rank-N-error.txt; rank 0, whose next
  collective then fails, reports the failing rank's message, and the launcher reports what rank 0 could not.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel


class ForwardingDDP(DistributedDataParallel):
    """DDP that answers attribute reads the wrapped model answers (`.config`, `.dtype`, ...): the family
    adapters read those from the denoiser and text encoders, and run them through this wrapper so DDP's
    backward hooks see every step."""

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.module, name)


def trains(module: nn.Module) -> bool:
    return any(p.requires_grad for p in module.parameters())


def wrap(accelerator: Any, module: nn.Module, partly_used: bool = False) -> nn.Module:
    """`module` as accelerate prepares it for DDP (autocast on its forward, the run's DDP settings), made
    attribute-transparent. Modules without trained parameters stay as they are (DDP refuses them).

    `partly_used`: some trained parameters may get no gradient in a step (a text encoder whose last layers
    the family never reads: SDXL's CLIP-L, clip_skip), which DDP allows only when told to look for them."""
    from tuitrain.trainer.fsdp import is_sharded

    if not trains(module) or is_sharded(module):  # FSDP (distributed.strategy) averages its own gradients
        return module
    handler = accelerator.ddp_handler
    before = handler.find_unused_parameters if handler is not None else None
    if handler is not None and partly_used:
        handler.find_unused_parameters = True  # accelerate builds DDP from this handler's settings
    try:
        wrapped = accelerator.prepare_model(module, device_placement=False)
    finally:
        if handler is not None:
            handler.find_unused_parameters = before
    if isinstance(wrapped, DistributedDataParallel):
        wrapped.__class__ = ForwardingDDP
    return wrapped


def unwrap(module: nn.Module) -> nn.Module:
    return module.module if isinstance(module, DistributedDataParallel) else module


@contextlib.contextmanager
def no_sync(modules: list[nn.Module]) -> Iterator[None]:
    """Skip DDP's gradient averaging for the backward passes inside (the first micro-batches of an
    accumulated step): gradients add up locally and are averaged once, in the last one."""
    with contextlib.ExitStack() as stack:
        for module in modules:
            if isinstance(module, DistributedDataParallel):
                stack.enter_context(module.no_sync())
        yield


def gpu_utilization(device: torch.device) -> int | None:
    """The GPU's utilisation in percent (torch.cuda.utilization: the share of the last sample period, 1/6 to 1 s,
    in which a kernel ran), or None when it cannot be read: torch reads it through NVML (nvidia-ml-py), which
    may be missing, and NVML may refuse (a MIG slice, a container without the driver's library)."""
    try:
        return int(torch.cuda.utilization(device))
    except Exception:  # noqa: BLE001 - ModuleNotFoundError, pynvml.NVMLError_*, RuntimeError: all mean "unknown"
        return None


def broadcast(value: Any) -> Any:
    """Rank 0's `value` on every rank (a small picklable object: the commands of one step)."""
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def mean_over_ranks(values: torch.Tensor) -> torch.Tensor:
    """`values` averaged over the ranks (in place of one more transfer: the step's loss travels with it)."""
    import torch.distributed as dist

    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values / dist.get_world_size()


def error_file(run_root: Path, rank: int) -> Path:
    return run_root / f"rank-{rank}-error.txt"


def write_rank_error(run_root: Path, rank: int, message: str) -> None:
    """What went wrong on this rank, for rank 0 and the launcher to report (one line)."""
    error_file(run_root, rank).write_text(message.strip().splitlines()[0] if message.strip() else "failed")


def running_file(run_root: Path, rank: int) -> Path:
    return run_root / f"rank-{rank}.running"


def mark_running(run_root: Path, rank: int) -> None:
    """While a rank trains, rank-N.running holds its pid; a rank that ends in any way Python sees removes it
    (clear_running), so a file whose process is gone names a rank that was killed (SIGKILL, the OOM killer)."""
    running_file(run_root, rank).write_text(str(os.getpid()))


def clear_running(run_root: Path, rank: int) -> None:
    running_file(run_root, rank).unlink(missing_ok=True)


def _dead(pid_text: str) -> bool:
    try:
        os.kill(int(pid_text), 0)
    except (ValueError, ProcessLookupError):
        return True
    except PermissionError:
        return False
    return False


def peer_error(run_root: Path, world: int, wait: float = 3.0) -> str:
    """Why another rank stopped ("" when none is known): its own error line, else that it died without one.
    Waits a moment, since the failing rank writes its error while this one is already noticing."""
    import time

    deadline = time.monotonic() + wait
    while True:
        for rank in range(1, world):
            path = error_file(run_root, rank)
            if path.is_file():
                return f"rank {rank} failed: {path.read_text().strip()}"
        if time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    for rank in range(1, world):
        marker = running_file(run_root, rank)
        if marker.is_file() and _dead(marker.read_text().strip()):
            return (f"rank {rank} (pid {marker.read_text().strip()}) died without an error: killed, or out of "
                    "host memory (the kernel's OOM killer); the other processes were stopped")
    return ""


def clear_rank_files(run_root: Path) -> None:
    """A previous attempt's error lines and running markers (the launcher clears them before starting)."""
    for pattern in ("rank-*-error.txt", "rank-*.running"):
        for path in run_root.glob(pattern):
            path.unlink(missing_ok=True)
