"""The pre-flight report as text a person reads in an 80-column terminal.

Plain text on purpose: file names may contain '[' and would be eaten as Rich
markup, so the CLI prints this with markup off.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tuitrain.dataset.hashing import HASH_BITS

if TYPE_CHECKING:
    from tuitrain.dataset.report import ConceptStats, PreflightReport

WIDTH = 80


def shown(path: Path | None, root: Path) -> str:
    """A path relative to the report root, printable even when the name is not valid UTF-8."""
    if path is None:
        return ""
    try:
        text = os.path.relpath(path, root)
    except ValueError:
        text = os.fspath(path)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _wrapped(text: str, first: str, *, rest: str | None = None) -> list[str]:
    """Wrap to 80 columns; `first` prefixes the first line, `rest` (default: as wide, blank) the others."""
    rest = " " * len(first) if rest is None else rest
    lines = textwrap.wrap(text, WIDTH, initial_indent=first, subsequent_indent=rest, break_on_hyphens=False)
    return lines or [first]


def _listing(lines: Sequence[str], max_items: int, indent: str = "    ") -> list[str]:
    out = []
    for line in lines[:max_items]:
        out.extend(_wrapped(line, indent + "- "))
    if len(lines) > max_items:
        out.append(f"{indent}... and {len(lines) - max_items} more (see --json)")
    return out


def _table(rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(row[col]) for row in rows) for col in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append("  " + "  ".join(cells).rstrip())
    return lines


def render_report(report: PreflightReport, *, max_items: int = 25, other_problems: int = 0) -> str:
    """`other_problems`: how many reasons outside the data (config, base model) stop the run; the
    caller prints them after the report. The headline is the run's verdict, never CAN TRAIN above
    a "cannot train" line."""
    root = report.root
    s = report.settings
    can_train = report.can_train and not other_problems
    lines = ["tuitrain pre-flight check: " + ("CAN TRAIN" if can_train else "CANNOT TRAIN"), ""]
    buckets = (
        f"buckets of ~{s['resolution']}x{s['resolution']} (step {s['bucket_step']}, max aspect {s['max_aspect']:g})"
        if s["bucketing"]
        else f"all centre-cropped to {s['resolution']}x{s['resolution']}"
    )
    lines += _wrapped(f"Settings: {buckets}; {_per_step_text(s)}.", "", rest="  ")

    if report.concepts:
        lines += ["", "Concepts"]
        lines += _table(*_concept_rows(report))
        reg = [c for c in report.concepts if c.role == "regularisation"]
        if reg:
            train = sum(c.samples for c in report.concepts if c.role == "train")
            balanced = " (balanced to the train samples, as kohya does)" if any(c.balanced for c in reg) else ""
            lines += _wrapped(
                f"regularisation: {sum(c.samples for c in reg)} samples per epoch beside {train} train "
                f"samples{balanced}", "  "
            )
        for concept in report.concepts:
            for message in concept.errors + concept.warnings:
                lines += _wrapped(f"{concept.name}: {message}", "  ! ")
    if report.disabled:
        lines += _wrapped(f"left out (enabled = false): {', '.join(report.disabled)}", "  ")
    if report.held_out:  # role = "validation" concepts and data.validation_split (dataset.holdout)
        count = len(report.held_out)
        lines += _wrapped(f"held out for the eval loss, never trained: {count} image{'s' if count != 1 else ''}", "  ")
        lines += _listing([shown(p, root) for p in report.held_out], max_items)
    if report.unused_folders:  # right under the concepts: where a kohya tree's images went
        from tuitrain.dataset.unused import unused_summary

        lines += _wrapped(unused_summary(report.unused_folders) + ":", "  ! ")
        lines += _listing([f"{shown(f.path, root)}{os.sep}: {f.images} image{'s' if f.images != 1 else ''}"
                           for f in report.unused_folders], max_items)

    if report.buckets:
        lines += ["", "Buckets"]
        rows = [["size", "images", "samples", "batches/epoch", "skipped/epoch"]]
        rows += [
            [
                f"{b.size[0]}x{b.size[1]}",
                str(b.images),
                str(b.samples),
                str(b.batches_per_epoch),
                str(b.skipped_per_epoch),
            ]
            for b in report.buckets
        ]
        lines += _table(rows, right={1, 2, 3, 4})

    lines += ["", _steps_text(report)]

    for issue in (i for i in report.bucket_issues if i.never_trains):
        lines += [""]
        lines += _wrapped(
            f"Bucket {issue.size[0]}x{issue.size[1]} NEVER TRAINS: {issue.samples} samples, "
            f"fewer than the {issue.needed} one batch needs. Its images:",
            "",
            rest="  ",
        )
        lines += _listing([shown(p, root) for p in issue.images], max_items)
        lines += ["  Fix it by one of:"]
        lines += _listing(list(issue.fixes), max_items)
    partial = [i for i in report.bucket_issues if not i.never_trains]
    if partial:
        lines += ["", "Buckets that skip a few samples each epoch (different ones each epoch):"]
        lines += _listing(
            [f"{i.size[0]}x{i.size[1]}: skips {i.skipped_per_epoch} of {i.samples}; {i.fixes[0]}" for i in partial],
            max_items,
        )

    sections: list[tuple[str, list[str], int]] = [
        (
            "Files not used (train skips them)",
            [f"{shown(p.path, root)}: {p.reason}" for p in report.unreadable],
            len(report.unreadable),  # every bad file is named, however many
        ),
        ("Missing captions", [shown(p, root) for p in report.missing_captions], max_items),
        ("Empty captions", [shown(p, root) for p in report.empty_captions], max_items),
        (
            "Smaller than their bucket, will be upscaled",
            [
                f"{shown(a.path, root)}: {a.original_size[0]}x{a.original_size[1]} -> "
                f"{a.bucket[0]}x{a.bucket[1]} (x{a.scale:.2f})"
                for a in report.upscaled
            ],
            max_items,
        ),
        (
            "Exact duplicates (same bytes)",
            [" = ".join(shown(p, root) for p in group) for group in report.exact_duplicates],
            max_items,
        ),
        (
            f"Near duplicates (look alike; (n): bits of {HASH_BITS} unlike the first)",
            [
                " ~ ".join(shown(p, root) + (f" ({report.near_distance.get(p, 0)})" if n else "")
                           for n, p in enumerate(group))
                for group in report.near_duplicates
            ],
            max_items,
        ),
        ("Handled automatically", [f"{shown(p, root)}: {note}" for p, note in report.notes], max_items),
    ]
    for title, items, limit in sections:
        if items:
            lines += ["", f"{title} ({len(items)})"]
            lines += _listing(items, limit)
    if not s.get("full_check", True):
        lines += ["", "(quick check: images were not decoded; duplicates were not looked for)"]

    lines += [""]
    if report.can_train and other_problems:
        lines += [f"Verdict: this data can train, but the run cannot ({other_problems} "
                  f"problem{'s' if other_problems != 1 else ''} below)."]
    elif report.can_train:
        lines += ["Verdict: this data can train."]
    else:
        lines += ["Verdict: this data cannot train:"]
        lines += _listing(report.blocking, len(report.blocking), indent="  ")
    return "\n".join(lines)


def _per_step_text(settings: dict[str, object]) -> str:
    parts = [f"batch {settings['batch_size']}"]
    if settings["gradient_accumulation"] != 1:
        parts.append(f"accumulation {settings['gradient_accumulation']}")
    if settings["num_gpus"] != 1:
        parts.append(f"{settings['num_gpus']} GPUs")
    if len(parts) == 1:
        return f"{parts[0]} per step"
    return f"{' x '.join(parts)} = {settings['samples_per_step']} samples per step"


def _steps_text(report: PreflightReport) -> str:
    per_epoch = f"{report.steps_per_epoch} per epoch"
    accumulation, processes = report.settings["gradient_accumulation"], report.settings.get("num_gpus", 1)
    parts = [f"{report.batches_per_epoch} batches"]
    if processes != 1:  # each process trains every N-th batch, as many as the others (trainer/data.shard)
        parts.append(f"{processes} processes")
    if accumulation != 1:
        parts.append(f"accumulation {accumulation}")
    if len(parts) > 1:
        per_epoch = f"{' / '.join(parts)} = {per_epoch}"
    if report.settings.get("max_steps") is not None:
        return f"Steps: {per_epoch}; max_steps {report.total_steps} = about {report.epochs} epochs"
    epochs = "epoch" if report.epochs == 1 else "epochs"
    return f"Steps: {per_epoch} x {report.epochs} {epochs} = {report.total_steps} steps"


def _concept_rows(report: PreflightReport) -> tuple[list[list[str]], set[int]]:
    """The concepts table: with several concepts, each one's share of an epoch's samples; role, loss
    weight and resolution columns only when some concept sets them (one plain concept reads as before)."""
    concepts = report.concepts
    resolution = report.settings["resolution"]
    head = ["name", "images", "repeats", "samples"]
    columns: list[tuple[str, Callable[[ConceptStats], str]]] = []
    if len(concepts) > 1:
        columns.append(("share", lambda c: f"{c.share:.0%}"))
    if any(c.role != "train" for c in concepts):
        columns.append(("role", lambda c: "reg" if c.role == "regularisation" else c.role))
    if any(c.loss_weight != 1.0 for c in concepts):
        columns.append(("weight", lambda c: f"{c.loss_weight:g}"))
    if any(c.resolution not in (0, resolution) for c in concepts):
        columns.append(("res", lambda c: str(c.resolution or resolution)))
    rows = [head + [name for name, _ in columns] + ["caption"]]
    rows += [[c.name, str(c.images), c.repeats_text, str(c.samples)] + [show(c) for _, show in columns] + [c.caption]
             for c in concepts]
    right = {1, 2, 3} | set(range(4, 4 + len(columns)))
    return rows, right
