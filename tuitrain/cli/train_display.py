"""What `tuitrain train` shows in the foreground: a Rich progress bar fed by the trainer's events."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class RichDisplay:
    def __init__(self) -> None:
        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[speed]}"),
            TimeElapsedColumn(), TimeRemainingColumn(), console=self.console,
        )
        self.task: Any = None

    def __enter__(self) -> RichDisplay:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        p = self.progress
        if kind == "started":
            total = event.get("total_steps")
            resumed = event.get("resumed_from") or 0
            self.task = p.add_task("training", total=total, completed=resumed, loss="-", speed="")
            p.console.print(f"{event.get('family')} {event.get('method')} on {event.get('device')} "
                            f"({event.get('dtype')}): {event.get('images')} images, {total} steps. Ctrl+C stops and saves.")
        elif kind == "step" and self.task is not None:
            p.update(self.task, completed=event["step"], loss=f"{event['loss']:.4f}",
                     speed=f"{event['it_per_s']:.2f} it/s")
        elif kind in ("saved", "sample", "backup"):
            p.console.print(f"[dim]{kind}:[/] {event.get('path')}")
        elif kind in ("warning", "log"):
            style = "yellow" if kind == "warning" else "dim"
            p.console.print(f"[{style}]{event.get('message')}[/]")
        elif kind == "error":
            p.console.print(f"[bold red]error:[/] {event.get('message')}")
        elif kind == "finished":
            p.console.print(f"[bold]{event.get('status')}[/] at step {event.get('step')} {event.get('reason', '')}")
