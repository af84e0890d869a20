"""What `tuitrain train` shows in the foreground: a Rich progress bar fed by the trainer's events.

Each thing is said once (an error is not repeated by the "failed" line after it), and lines are
wrapped only on a terminal: into a file or a pipe a message stays one line, as grep and logs want it.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class RichDisplay:
    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.console.soft_wrap = not self.console.is_terminal  # a file gets whole lines, a terminal wrapped ones
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[speed]}"),
            TimeElapsedColumn(), TimeRemainingColumn(), console=self.console,
        )
        self.task: Any = None
        self.error: dict[str, Any] | None = None  # the trainer's error event, once it said one

    def __enter__(self) -> RichDisplay:
        return self  # the bar starts with training ("started"): a run refused before it draws no empty bar

    def __exit__(self, *exc: object) -> None:
        if self.task is not None:
            self.progress.stop()

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        p = self.progress
        if kind == "started":
            total = event.get("total_steps")
            resumed = event.get("resumed_from") or 0
            if self.task is None:
                p.start()
            self.task = p.add_task("training", total=total, completed=resumed, loss="-", speed="")
            p.console.print(escape(f"{event.get('family')} {event.get('method')} on {event.get('device')} "
                                   f"({event.get('dtype')}): {event.get('images')} images, {total} steps. "
                                   "Ctrl+C stops and saves."))
        elif kind == "step" and self.task is not None:
            p.update(self.task, completed=event["step"], loss=f"{event['loss']:.4f}",
                     speed=f"{event['it_per_s']:.2f} it/s")
        elif kind in ("saved", "sample", "backup"):
            p.console.print(f"[dim]{kind}:[/] {escape(str(event.get('path')))}")
        elif kind in ("warning", "log"):
            style = "yellow" if kind == "warning" else "dim"
            p.console.print(f"[{style}]{escape(str(event.get('message')))}[/]")
        elif kind == "error":
            self.error = event
            p.console.print(f"[bold red]error:[/] {escape(str(event.get('message')))}")
        elif kind == "finished":
            reason = str(event.get("reason") or "")
            said = self.error is not None and reason == str(self.error.get("message"))
            tail = "" if not reason or said else f": {escape(reason)}"
            p.console.print(f"[bold]{escape(str(event.get('status')))}[/] at step {event.get('step')}{tail}")
