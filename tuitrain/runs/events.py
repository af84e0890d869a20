"""The event log format: one JSON object per line, appended by the trainer.

Each event has `v` (format version), `type`, `time` (Unix seconds) and its own
fields. The same lines travel over the control socket, so a TUI that attaches
late replays the file and then follows the socket with one parser. Readers skip
lines they cannot parse (a torn last line after a crash) and types they do not
know (events added by newer trainers).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

EVENTS_VERSION = 1

# Every event type, and what it carries (besides v/type/time). `epoch` in step, sample, saved, eval and
# backup events is the epoch the last step belongs to, counted from 1 (0 before the first step); in an
# `epoch` event it is the number of epochs done.
EVENT_TYPES: dict[str, str] = {
    "started": "run, config summary, total_steps, total_epochs, pid, resumed_from, batch_size, "
               "gradient_accumulation, processes, effective_batch (images per optimizer step: the product of the "
               "three; the learning rate is used as given for it)",
    "step": "step, epoch, loss, lr, grad_norm, it_per_s",
    "memory": "allocated, reserved, peak, total (bytes; GPU) or rss (bytes; CPU); utilization (GPU only, the percent "
              "of the last sample period a kernel ran, torch.cuda.utilization; absent when it cannot be read, e.g. "
              "without nvidia-ml-py); ranks: each process's own, as a list of those fields (several processes)",
    "epoch": "epoch, step, mean loss",
    "sample": "step, epoch, path, prompt, index",
    "saved": "step, epoch, path, final, eval_loss (the held-out eval loss of these weights; absent without a "
             "held-out set)",
    "eval": "step, epoch, loss (held-out images' mean loss at fixed noise and timesteps; trainer/evaluation.py), "
            "train_loss (a fixed subset of the training images, scored the same way; null when none), images, "
            "train_images, draws (noise draws per image)",
    "backup": "step, epoch, path, bytes (size on disk)",
    "paused": "step",
    "resumed": "step",
    "log": "level, message",
    "warning": "message",
    "error": "message, traceback_path",
    "finished": "status (completed | stopped | failed), reason, step",
}


def make_event(type_: str, **fields: Any) -> dict[str, Any]:
    if type_ not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type_!r}")
    return {"v": EVENTS_VERSION, "type": type_, "time": time.time(), **fields}


def encode_event(event: dict[str, Any]) -> bytes:
    return (json.dumps(event, separators=(",", ":"), allow_nan=False) + "\n").encode("utf-8")


def append_event(path: Path, event: dict[str, Any]) -> None:
    """Append one whole line with a single write (O_APPEND), so readers never see half of it."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, encode_event(event))
    finally:
        os.close(fd)


def decode_line(line: bytes | str) -> dict[str, Any] | None:
    try:
        event = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        return None
    return event


def iter_events(path: Path, offset: int = 0) -> Iterator[tuple[int, dict[str, Any]]]:
    """(offset after the line, event) for each complete line from `offset` on."""
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        return
    with fh:
        fh.seek(offset)
        pos = offset
        for line in fh:
            if not line.endswith(b"\n"):
                return  # a line still being written: read it next time
            pos += len(line)
            event = decode_line(line)
            if event is not None:
                yield pos, event


def tail_events(path: Path, max_bytes: int = 256 * 1024) -> list[dict[str, Any]]:
    """The events in the last `max_bytes` of the log, oldest first."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            start = max(0, size - max_bytes)
            fh.seek(start)
            data = fh.read()
    except FileNotFoundError:
        return []
    lines = data.split(b"\n")
    if start > 0:
        lines = lines[1:]  # the first line is probably cut
    events = [decode_line(line) for line in lines if line.strip()]
    return [e for e in events if e is not None]
