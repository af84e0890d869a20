"""Batches prepared ahead of the step on background threads (data.workers), handed back in order.

Why: a step whose latents are not cached yet (the first epoch, crop_jitter, data.cache_latents
= false) waits for image decoding, resizing and the VAE; here that work for the next batches
runs while the denoiser trains on this one. What a batch holds is a pure function of (seed,
epoch, batch, slot) and the files (Trainer._sample_rng), never of which thread made it or
when, so a prefetched run equals an inline one bit for bit, and a resumed run its
uninterrupted twin. Only the main thread advances the batch order and touches tokenizers,
text encoders and the denoiser.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import torch

from tuitrain.trainer.cache import TensorCache
from tuitrain.trainer.data import Sample
from tuitrain.trainer.families.base import LatentBatch
from tuitrain.trainer.inputs import SampleEncoder
from tuitrain.trainer.masks import SampleInputs

K = TypeVar("K")
T = TypeVar("T")
_END = object()


@dataclass
class PreparedBatch:
    """One micro-batch's host-side inputs: where it sits in the run, and what it holds (on the CPU)."""

    epoch: int
    batch: int
    samples: list[Sample]
    inputs: list[SampleInputs]
    captions: list[str]  # before the method's prepare_caption: that tokenizes, which stays on the main thread
    latents: LatentBatch  # collated; its conditioning is filled in on the main thread
    loss_masks: list[torch.Tensor | None]


class Prefetcher(Generic[K, T]):
    """`prepare(key)` for each key in order, `workers` threads running ahead; results come back in key order.

    workers = 0 prepares each item inline when it is asked for (no thread). An exception
    raised while preparing an item is raised when that item is asked for, as inline.
    """

    def __init__(self, prepare: Callable[[K], T], keys: Iterable[K], workers: int,
                 initializer: Callable[[], None] | None = None) -> None:
        self._prepare = prepare
        self._keys: Iterator[K] = iter(keys)
        self._workers = workers
        self._pool = (ThreadPoolExecutor(workers, thread_name_prefix="tuitrain-data", initializer=initializer)
                      if workers > 0 else None)
        self._pending: deque[Future[T]] = deque()

    def __iter__(self) -> Prefetcher[K, T]:
        return self

    def __next__(self) -> T:
        if self._pool is None:
            return self._prepare(next(self._keys))
        # The item asked for plus one per worker: every worker stays busy while the step runs.
        while len(self._pending) <= self._workers:
            key = next(self._keys, _END)
            if key is _END:
                break
            self._pending.append(self._pool.submit(self._prepare, key))  # type: ignore[arg-type]
        if not self._pending:
            raise StopIteration
        return self._pending.popleft().result()

    def close(self) -> None:
        """Drop what was prepared ahead and wait for the threads (none outlives the loop)."""
        for future in self._pending:
            future.cancel()
        self._pending.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Prefetcher[K, T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SharedTensorCache(TensorCache):
    """A TensorCache the data threads share: one get or put at a time.

    TensorCache's memory index and temporary file names are not made for threads; two
    threads missing the same entry both encode it, which is only wasted work (the result is
    the same tensor), never a torn file.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lock = threading.Lock()

    def get(self, fields: dict[str, Any]) -> dict[str, torch.Tensor] | None:
        with self._lock:
            return super().get(fields)

    def put(self, fields: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        with self._lock:
            super().put(fields, tensors)


class DeviceTurnEncoder(SampleEncoder):
    """A SampleEncoder whose VAE work waits for the device's turn (`device_turn`).

    On a GPU the loop holds the turn while it runs a step's forward, backward and
    optimizer step, so a data thread's VAE encode never adds its activations to the
    step's peak memory: the GPU's memory is what it was with inline loading, and only
    the decoding and resizing overlap the step. On the CPU the turn is free (a no-op)
    and the encode overlaps too.
    """

    device_turn: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()

    def _encode(self, pixels: torch.Tensor) -> torch.Tensor:
        with self.device_turn:
            return super()._encode(pixels)


def device_turn(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """What serialises device work between the step and the data threads: a lock on a GPU, nothing on the CPU."""
    return threading.Lock() if device.type == "cuda" else contextlib.nullcontext()


def pinned(batch: LatentBatch, masks: list[torch.Tensor | None]) -> tuple[LatentBatch, list[torch.Tensor | None]]:
    """The batch's tensors in page-locked memory, so copying them to the GPU can overlap other work."""
    return _map_tensors(batch, lambda t: t.pin_memory()), [m.pin_memory() if m is not None else None for m in masks]


def on_device(batch: LatentBatch, device: torch.device) -> LatentBatch:
    """Every tensor field of `batch` on `device`; non-blocking, which only overlaps anything from pinned memory."""
    return _map_tensors(batch, lambda t: t.to(device, non_blocking=True))


def _map_tensors(batch: LatentBatch, fn: Callable[[torch.Tensor], torch.Tensor]) -> LatentBatch:
    moved = {f.name: fn(v) for f in dataclasses.fields(batch) if isinstance(v := getattr(batch, f.name), torch.Tensor)}
    return dataclasses.replace(batch, **moved)


def cuda_thread_init(device: torch.device) -> Callable[[], None] | None:
    """For data threads on a GPU: make `device` their current one (a thread starts on GPU 0, which
    would make a second CUDA context there when the run trains on another)."""
    if device.type != "cuda":
        return None
    index = device.index if device.index is not None else torch.cuda.current_device()
    return lambda: torch.cuda.set_device(index)
