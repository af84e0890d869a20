"""Text for the dashboard's panels, built from the model: plain functions, easy to test."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping

from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from tuitrain.tui.dashboard.model import LogEntry, RunModel, Status

_BLOCKS = "▁▂▃▄▅▆▇█"
GIB = 1024**3

# Rich styles cannot name Textual's theme variables: the screen passes the theme's colours in.
Palette = Mapping[str, str]
DEFAULT_PALETTE: dict[str, str] = {
    "primary": "#0178D4", "secondary": "#5A9BD5", "success": "#4EBF71", "warning": "#FEA62B",
    "error": "#E0506E", "accent": "#FEA62B",
}
_STATE_COLOUR = {
    "running": "success", "finished": "success", "paused": "warning", "stopping": "warning",
    "starting": "accent", "stopped": "secondary", "failed": "error",
}


def palette(variables: Mapping[str, str]) -> dict[str, str]:
    """The theme colours the panels use, as #rrggbb (falling back to the defaults)."""
    from textual.color import Color

    out = dict(DEFAULT_PALETTE)
    for name in out:
        try:
            out[name] = Color.parse(variables[name]).hex6
        except Exception:  # noqa: BLE001 - a theme without it, or a value Color cannot parse
            pass
    return out


def state_style(label: str, colours: Palette) -> str:
    name = _STATE_COLOUR.get(label)
    return f"bold {colours[name]}" if name else "dim"


def duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "–"
    seconds = int(round(seconds))
    days, rest = divmod(seconds, 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    return f"{days}d {h:02d}:{m:02d}:{s:02d}" if days else f"{h}:{m:02d}:{s:02d}"


def size(n: float | None) -> str:
    if n is None:
        return "–"
    if n >= GIB:
        return f"{n / GIB:.1f} GiB"
    return f"{n / 1024**2:.0f} MiB"


def number(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "–"
    if x == 0:
        return "0"
    if abs(x) >= 1e4 or abs(x) < 1e-3:
        return f"{x:.2e}"
    return f"{x:.4g}"


def sparkline(values: list[float], width: int) -> str:
    """One line of block characters; the last `width` values, scaled to their own range."""
    values = [v for v in values[-width:] if math.isfinite(v)]
    if not values:
        return ""
    low, high = min(values), max(values)
    span = high - low
    if span <= 0:
        return _BLOCKS[3] * len(values)
    return "".join(_BLOCKS[min(7, int((v - low) / span * 8))] for v in values)


def status_line(model: RunModel, status: Status, run_name: str, colours: Palette = DEFAULT_PALETTE) -> Text:
    text = Text.assemble((f" {status.label.upper()} ", state_style(status.label, colours) + " reverse"), " ",
                         (run_name, "bold"))
    started = model.started or {}
    about = " · ".join(str(started[k]) for k in ("family", "method", "device", "dtype") if started.get(k))
    if about:
        text.append(f"  {about}", "dim")
    if status.reason:
        text.append(f"  {status.reason}")
    return text


def progress(model: RunModel, width: int) -> RenderableType:
    """Epoch and step bars, it/s, elapsed and ETA."""
    total, spe, epochs = model.total_steps, model.steps_per_epoch, model.total_epochs
    bar_width = max(10, width - 40)
    grid = Table.grid(padding=(0, 1))
    grid.add_column(width=16)
    grid.add_column(width=bar_width)
    grid.add_column()
    epoch = max(1, model.epoch) if model.step else (model.epoch or 0)
    if spe:
        within = model.step - (max(1, epoch) - 1) * spe if model.step else 0
        within = max(0, min(spe, within))
        grid.add_row(f"epoch {epoch}/{epochs or '?'}", ProgressBar(total=spe, completed=within, width=bar_width),
                     f"{within}/{spe} steps")
    else:
        grid.add_row(f"epoch {epoch}/{epochs or '?'}", "", "")
    percent = f"{100 * model.step / total:.1f} %" if total else ""
    grid.add_row(f"step {model.step}/{total or '?'}",
                 ProgressBar(total=total or 1, completed=model.step if total else 0, width=bar_width), percent)
    rate = model.it_per_s
    eta = model.eta()
    paused = model.lifecycle == "paused"
    line = Text.assemble(
        (f"{rate:.2f} it/s" if rate else "– it/s", "bold"), "   elapsed ", duration(model.elapsed()),
        "   ETA ", "paused" if paused and eta is not None else duration(eta),
    )
    if model.loss.last is not None:
        line.append(f"   loss {number(model.loss.last)}")
    if model.evals:  # trainer/evaluation.py's score of the held-out images, and the save that scored best
        last = max(model.evals)
        best = min(model.evals, key=lambda step: (model.evals[step][0], step))
        line.append(f"   eval {number(model.evals[last][0])}")
        if best != last:
            line.append(f" (best {number(model.evals[best][0])} at step {best})", "dim")
    return Group(grid, line)


def stats(model: RunModel, width: int, colours: Palette = DEFAULT_PALETTE) -> RenderableType:
    """Learning rate, grad norm and memory: numbers and small trends."""
    spark = max(4, width - 24)
    grid = Table.grid(padding=(0, 1))
    grid.add_column(width=10, style="dim")
    grid.add_column(width=9)
    grid.add_column()
    grid.add_row("lr", number(model.lr.last), Text(sparkline(model.lr.recent(spark), spark), colours["primary"]))
    grid.add_row("grad norm", number(model.grad_norm.last),
                 Text(sparkline(model.grad_norm.recent(spark), spark), colours["primary"]))
    batch = model.effective_batch
    if batch is not None:  # the lr is used as given for this many images per step (issue 19: never scaled)
        size_, accumulation, processes, total = batch
        spelled = [str(size_)] + ([f"{accumulation} accum"] if accumulation != 1 else []) + (
            [f"{processes} procs"] if processes != 1 else [])
        grid.add_row("batch", str(total), Text("images per step" if len(spelled) == 1 else " x ".join(spelled),
                                               overflow="ellipsis", no_wrap=True))
    grid.add_row("", "", "")
    mem = model.memory or {}
    total = mem.get("total") if isinstance(mem.get("total"), (int, float)) and mem["total"] > 0 else None

    def against_total(key: str) -> RenderableType:
        value = mem.get(key)
        if total is None or not isinstance(value, (int, float)):
            return ""
        if spark < 14:
            return f"{100 * value / total:.0f} %"
        bar = Table.grid(padding=(0, 1))
        bar.add_row(ProgressBar(total=total, completed=value, width=max(4, spark - 7)), f"{100 * value / total:3.0f} %")
        return bar

    if "allocated" in mem or total is not None:
        grid.add_row("VRAM", size(total), "total")
        for key in ("allocated", "reserved", "peak"):
            grid.add_row(key, size(mem.get(key)), against_total(key))
    elif "rss" in mem:
        grid.add_row("RSS", size(mem.get("rss")), "process memory (CPU run)")
    else:
        grid.add_row("memory", "–", "")
    busy = model.utilization  # torch.cuda.utilization: the share of the last moment a kernel ran
    ranks = mem.get("ranks")
    if busy is not None and len(busy) == 1 and busy[0] is not None:
        grid.add_row("GPU util", f"{busy[0]} %", ProgressBar(total=100, completed=busy[0], width=max(4, spark - 7))
                     if spark >= 14 else "")
    if isinstance(ranks, list) and len(ranks) > 1:  # distributed.processes: each process's peak (or RSS), busy %
        key = "peak" if all(isinstance(r, dict) and "peak" in r for r in ranks) else "rss"
        per = "  ".join(f"{i}:{size(r.get(key)) if isinstance(r, dict) else '?'}"
                        + (f" {busy[i]}%" if busy is not None and busy[i] is not None else "")
                        for i, r in enumerate(ranks))
        grid.add_row(f"{len(ranks)} procs", key + (" util" if busy is not None else ""),
                     Text(per, overflow="ellipsis", no_wrap=True))
    trend = sparkline(model.mem.recent(spark), spark)
    if trend:
        grid.add_row("trend", "", Text(trend, colours["secondary"]))
    return grid


def log_line(entry: LogEntry, colours: Palette = DEFAULT_PALETTE) -> Text:
    """A log entry; warnings and errors stand out."""
    error, warning = colours["error"], colours["warning"]
    stamp = time.strftime("%H:%M:%S ", time.localtime(entry.time)) if entry.time is not None else ""
    if entry.level == "error":
        return Text.assemble((stamp, "dim"), ("error: " + entry.text, f"bold {error}"))
    if entry.level == "warning":
        return Text.assemble((stamp, "dim"), ("warning: " + entry.text, warning))
    if entry.level == "trainer":
        lowered = entry.text.lower()
        if any(w in lowered for w in ("error", "traceback", "exception", "killed")):
            return Text(entry.text, error)
        if "warn" in lowered:
            return Text(entry.text, warning)
        return Text(entry.text, "dim")
    return Text.assemble((stamp, "dim"), entry.text)
