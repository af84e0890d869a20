"""What the dashboard knows about a run, built from its events: no Textual here.

Applying an event is O(1) (a replay of 100k events must take well under a
second) and never renders: the screen reads the model on a timer and redraws
only the parts whose version changed. The follower thread writes and the UI
reads under one lock (`RunModel.lock`).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from tuitrain.runs.library_output import is_library_line
from tuitrain.tui.dashboard.series import Series

_NUMBER = (int, float)
# Events only a trainer past its `started` emits: the last one dates the end of an attempt that was killed.
_ATTEMPT_EVENTS = frozenset({"step", "epoch", "sample", "saved", "backup", "eval", "memory", "paused", "resumed"})
DEAD_REASON = "the trainer process ended without finishing (killed, crashed or out of memory)"


def _percent(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 100 else None


def _short(path: Any) -> str:
    """output/x.safetensors rather than the whole absolute path: the log panel is narrow."""
    parts = str(path or "").replace("\\", "/").rstrip("/").split("/")
    return "/".join(parts[-2:])


@dataclass(frozen=True)
class Status:
    label: str  # loading | not started | starting | running | paused | stopping | finished | stopped | failed
    reason: str = ""

    @property
    def live(self) -> bool:
        """Is there a trainer to send commands to?"""
        return self.label in ("running", "paused", "stopping")


@dataclass(frozen=True)
class Sample:
    step: int
    epoch: int
    index: int
    prompt: str
    path: str


@dataclass
class SampleRound:
    """The samples drawn at one step: one per prompt."""

    step: int
    epoch: int
    samples: dict[int, Sample] = field(default_factory=dict)

    def ordered(self) -> list[Sample]:
        return [self.samples[i] for i in sorted(self.samples)]


@dataclass(frozen=True)
class LogEntry:
    seq: int
    level: str  # info | warning | error | trainer (a line of trainer.log)
    text: str
    time: float | None


class RunModel:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.lock = threading.Lock()
        self.clock = clock
        self._log_seq = 0
        self.log: deque[LogEntry] = deque(maxlen=1000)
        self.reset()
        # Set by the screen, not by events:
        self.alive: bool | None = None  # None until the follower first looked
        self.pid: int | None = None
        self.replayed = False
        self.stop_requested = False
        self.launching: str | None = None  # why we are waiting for a trainer we started
        self.launch_error: str | None = None

    def reset(self) -> None:
        """Forget the history (the event log was replaced)."""
        self.started: dict[str, Any] | None = None
        self.lifecycle: str | None = None  # started | paused | resumed | finished
        self.finished: dict[str, Any] | None = None
        self.last_error: str | None = None
        self.step = 0
        self.epoch = 0
        self.events_seen = 0
        self.last_event_time: float | None = None
        # The time earlier attempts trained before the one this run resumed in: elapsed counts the run's
        # training time, not the last process's (it restarted at 0 on every resume).
        self._earlier_elapsed = 0.0
        # The last event of the attempt running now that only a running trainer emits (a step, a save, ...):
        # a killed attempt's end. Not just the last event: the next trainer logs while it loads, before its
        # `started`, and that wait (a dead run can sit for days) is not training time.
        self._attempt_last_time: float | None = None
        self.loss = Series()
        self.lr = Series()
        self.grad_norm = Series()
        self.mem = Series()
        self._rate_window: deque[tuple[float, int]] = deque(maxlen=64)
        self._last_it_per_s: float | None = None
        self.memory: dict[str, Any] | None = None
        self.rounds: list[SampleRound] = []
        self.saved: list[dict[str, Any]] = []
        # The eval loss (trainer/evaluation.py) by step: (held-out loss, training-subset loss or None).
        self.evals: dict[int, tuple[float, float | None]] = {}
        self.backups: list[dict[str, Any]] = []
        # versions: the screen redraws a part when its number moved
        self.v_progress = self.v_loss = self.v_memory = self.v_samples = self.v_status = 0

    # -- events ---------------------------------------------------------------------------------
    def apply(self, events: Iterable[dict[str, Any]]) -> None:
        handlers = self._handlers
        for event in events:
            self.events_seen += 1
            handler = handlers.get(event["type"])
            if handler is not None:
                handler(self, event)
            t = event.get("time")
            if isinstance(t, (int, float)):
                self.last_event_time = t
                if event["type"] in _ATTEMPT_EVENTS:
                    self._attempt_last_time = t

    def _on_step(self, e: dict[str, Any]) -> None:
        # The hot path (a replay is mostly steps): exact class checks, no derived values here.
        step = e.get("step")
        if step.__class__ is not int:
            return
        self.step = step
        epoch = e.get("epoch")
        if epoch.__class__ is int:
            self.epoch = epoch
        loss = e.get("loss")
        if loss.__class__ in _NUMBER:
            self.loss.add(step, loss)
            self.v_loss += 1
        value = e.get("lr")
        if value.__class__ in _NUMBER:
            self.lr.add(step, value)
        value = e.get("grad_norm")
        if value.__class__ in _NUMBER:
            self.grad_norm.add(step, value)
        t = e.get("time")
        if t.__class__ in _NUMBER:
            self._rate_window.append((t, step))
        value = e.get("it_per_s")
        if value.__class__ in _NUMBER:
            self._last_it_per_s = value
        self.v_progress += 1

    def _on_started(self, e: dict[str, Any]) -> None:
        resumed = e.get("resumed_from")
        previous = self.started
        if not isinstance(resumed, int):
            self._earlier_elapsed = 0.0  # a fresh start: the history starts again too
        elif previous is not None and isinstance(previous.get("time"), (int, float)):
            end = self.finished.get("time") if self.finished else self._attempt_last_time  # killed: its last step
            if isinstance(end, (int, float)):
                self._earlier_elapsed += max(0.0, float(end) - previous["time"])
        self._attempt_last_time = None
        self.started = e
        self.lifecycle = "started"
        self.finished = None
        self.last_error = None
        self.stop_requested = False
        self.launching = None
        self.launch_error = None
        self._rate_window.clear()
        if isinstance(resumed, int):
            for series in (self.loss, self.lr, self.grad_norm):
                series.truncate(resumed)
            self.evals = {step: v for step, v in self.evals.items() if step <= resumed}
            self.step = resumed
            self.v_loss += 1
        self.v_status += 1
        self.v_progress += 1

    def _on_lifecycle(self, e: dict[str, Any]) -> None:
        self.lifecycle = e["type"]
        if e["type"] == "finished":
            self.finished = e
            self.stop_requested = False
            if isinstance(e.get("step"), int):
                self.step = e["step"]
        self.v_status += 1
        self.v_progress += 1

    def _on_epoch(self, e: dict[str, Any]) -> None:
        self.v_progress += 1

    def _on_memory(self, e: dict[str, Any]) -> None:
        self.memory = e
        value = e.get("allocated", e.get("rss"))
        if isinstance(value, (int, float)):
            self.mem.add(self.step, value)
        self.v_memory += 1

    def _on_sample(self, e: dict[str, Any]) -> None:
        step = e.get("step") if isinstance(e.get("step"), int) else self.step
        index = e.get("index") if isinstance(e.get("index"), int) else 0
        sample = Sample(step, int(e.get("epoch") or 0), index, str(e.get("prompt", "")), str(e.get("path", "")))
        last = self.rounds[-1] if self.rounds else None
        if last is None or last.step != step or index in last.samples:
            last = SampleRound(step, sample.epoch)
            self.rounds.append(last)
        last.samples[index] = sample
        self.v_samples += 1

    def _on_saved(self, e: dict[str, Any]) -> None:
        self.saved.append(e)
        loss = e.get("eval_loss")
        scored = f" · eval loss {loss:.4g}" if loss.__class__ in _NUMBER else ""
        self.add_log("info", f"saved {_short(e.get('path'))} at step {e.get('step')}{scored}", e.get("time"))
        self.v_samples += 1  # the compare view marks saved steps

    def _on_eval(self, e: dict[str, Any]) -> None:
        step, loss, train = e.get("step"), e.get("loss"), e.get("train_loss")
        if step.__class__ is not int or loss.__class__ not in _NUMBER:
            return
        self.evals[step] = (float(loss), float(train) if train.__class__ in _NUMBER else None)
        self.v_loss += 1
        self.v_samples += 1

    def eval_points(self) -> tuple[list[float], list[float], list[float]]:
        """(steps, held-out losses, training-subset losses: NaN where none), by step: the plot's second curve."""
        steps = sorted(self.evals)
        held = [self.evals[s][0] for s in steps]
        train = [self.evals[s][1] if self.evals[s][1] is not None else float("nan") for s in steps]
        return [float(s) for s in steps], held, train

    def eval_at(self, step: int) -> tuple[float, float | None] | None:
        """The eval loss of the weights at `step` (None when none was scored there)."""
        return self.evals.get(step)

    def _on_backup(self, e: dict[str, Any]) -> None:
        self.backups.append(e)
        size = f" ({e['bytes'] / 2**30:.1f} GiB)" if isinstance(e.get("bytes"), int) and e["bytes"] >= 2**30 else ""
        self.add_log("info", f"backup {_short(e.get('path'))} at step {e.get('step')}{size}", e.get("time"))

    def _on_log(self, e: dict[str, Any]) -> None:
        level = "warning" if e.get("level") == "warning" else "info"
        self.add_log(level, str(e.get("message", "")), e.get("time"))

    def _on_warning(self, e: dict[str, Any]) -> None:
        self.add_log("warning", str(e.get("message", "")), e.get("time"))

    def _on_error(self, e: dict[str, Any]) -> None:
        self.last_error = str(e.get("message", ""))
        self.add_log("error", self.last_error, e.get("time"))
        self.v_status += 1

    _handlers: dict[str, Callable[[RunModel, dict[str, Any]], None]] = {
        "step": _on_step,
        "started": _on_started,
        "paused": _on_lifecycle,
        "resumed": _on_lifecycle,
        "finished": _on_lifecycle,
        "epoch": _on_epoch,
        "memory": _on_memory,
        "sample": _on_sample,
        "saved": _on_saved,
        "eval": _on_eval,
        "backup": _on_backup,
        "log": _on_log,
        "warning": _on_warning,
        "error": _on_error,
    }

    # -- other inputs ---------------------------------------------------------------------------
    def add_log(self, level: str, text: str, when: Any = None) -> None:
        self._log_seq += 1
        self.log.append(LogEntry(self._log_seq, level, text, when if isinstance(when, (int, float)) else None))

    def add_trainer_lines(self, lines: Iterable[str]) -> None:
        """trainer.log lines, less the libraries' warnings (tagged by runs/library_output.py: they stay in the file)."""
        for line in lines:
            if not is_library_line(line):
                self.add_log("trainer", line)

    def set_alive(self, alive: bool, pid: int | None = None) -> None:
        """What the follower saw of the trainer process (PID file and process table)."""
        if alive != self.alive or pid != self.pid:
            self.alive, self.pid = alive, pid
            self.v_status += 1

    def _new_trainer_loading(self) -> bool:
        """A live trainer that is not the one whose session the log last reported (it is loading)."""
        if not self.alive:
            return False
        if self.lifecycle is None:
            return True
        return self.lifecycle == "finished" and self.pid is not None and self.pid != (self.started or {}).get("pid")

    def log_after(self, seq: int) -> list[LogEntry]:
        return [entry for entry in self.log if entry.seq > seq]

    # -- derived --------------------------------------------------------------------------------
    @property
    def total_steps(self) -> int | None:
        total = self.started.get("total_steps") if self.started else None
        return total if isinstance(total, int) and total > 0 else None

    @property
    def total_epochs(self) -> int | None:
        total = self.started.get("total_epochs") if self.started else None
        return total if isinstance(total, int) and total > 0 else None

    @property
    def steps_per_epoch(self) -> int | None:
        spe = self.started.get("steps_per_epoch") if self.started else None
        if isinstance(spe, int) and spe > 0:
            return spe
        if self.total_steps and self.total_epochs:
            return max(1, -(-self.total_steps // self.total_epochs))
        return None

    @property
    def effective_batch(self) -> tuple[int, int, int, int] | None:
        """(batch_size, gradient_accumulation, processes, images per step) as the trainer started with them;
        None for logs of trainers that did not say (before issue 19)."""
        s = self.started or {}
        values = (s.get("batch_size"), s.get("gradient_accumulation"), s.get("processes"), s.get("effective_batch"))
        if all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
            return values  # type: ignore[return-value]
        return None

    @property
    def utilization(self) -> list[int | None] | None:
        """Each GPU's utilisation (%) from the last memory event, by rank (one entry for one process); None
        when the trainer did not measure it (a CPU run, or no nvidia-ml-py on the trainer's side)."""
        mem = self.memory or {}
        ranks = mem.get("ranks")
        if isinstance(ranks, list) and len(ranks) > 1:
            found = [_percent(r.get("utilization")) if isinstance(r, dict) else None for r in ranks]
        else:
            found = [_percent(mem.get("utilization"))]
        return found if any(u is not None for u in found) else None

    def status(self) -> Status:
        if self.launch_error:
            return Status("failed", self.launch_error)
        if self.launching:
            return Status("starting", self.launching)
        if self.alive is None or not self.replayed:
            return Status("loading", "reading the run's history")
        if self._new_trainer_loading():
            return Status("starting", "the trainer is loading the model")
        if self.lifecycle == "finished":
            assert self.finished is not None
            kind = str(self.finished.get("status", "failed"))
            label = {"completed": "finished", "stopped": "stopped"}.get(kind, "failed")
            reason = str(self.finished.get("reason", "") or "")
            if label == "failed" and self.last_error and self.last_error not in reason:
                reason = f"{reason}; last error: {self.last_error}" if reason else self.last_error
            return Status(label, reason or ("completed · t: more epochs, or a new run from its config"
                                            if label == "finished" else ""))
        if self.lifecycle is None:
            return Status("not started", "press t to train")
        if not self.alive:
            reason = DEAD_REASON + (f"; last error: {self.last_error}" if self.last_error else "")
            return Status("failed", reason)
        if self.stop_requested:
            return Status("stopping", "saving, then stopping")
        if self.lifecycle == "paused":
            return Status("paused", "press p to resume")
        return Status("running")

    def elapsed(self) -> float | None:
        if self.started is None or not isinstance(self.started.get("time"), (int, float)):
            return None
        end = self.finished.get("time") if self.finished else None
        if not isinstance(end, (int, float)):
            end = self.last_event_time if self.alive is False else self.clock()
        return self._earlier_elapsed + max(0.0, float(end) - self.started["time"])

    @property
    def it_per_s(self) -> float | None:
        """Steps per second over the last 64 steps (the trainer's own figure is one step's)."""
        if len(self._rate_window) >= 2:
            (t0, s0), (t1, s1) = self._rate_window[0], self._rate_window[-1]
            if t1 > t0 and s1 > s0:
                return (s1 - s0) / (t1 - t0)
        return self._last_it_per_s

    def eta(self) -> float | None:
        total = self.total_steps
        if total is None or not self.it_per_s or self.lifecycle == "finished":
            return None
        return max(0, total - self.step) / self.it_per_s
