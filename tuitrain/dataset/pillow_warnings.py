"""Pillow's warnings about one file, kept as text for the report instead of stderr lines.

Pillow warns through the warnings module ("Corrupt EXIF data", "Tag data larger than
file"), which prints them to stderr naming Pillow's own source file, never the image:
300 such lines on a large odd dataset say nothing useful. Decoding is wrapped in
`captured()`, and what Pillow says becomes a per-file note in the pre-flight report.

warnings.catch_warnings is not thread-safe (it swaps process-wide state, and the
pre-flight decodes on a few threads, the review screen on two), so instead one hook is
installed while any thread is inside `captured()`, and each warning goes to the list of
the thread that raised it. Warnings of threads outside `captured()` pass through as usual.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from PIL import Image

MAX_NOTES = 3  # per file: a broken file can warn once per tag

_local = threading.local()
_lock = threading.Lock()
_users = 0
_previous_show: Any = None
_filter: tuple[Any, ...] | None = None


def _show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
          file: Any = None, line: str | None = None) -> None:
    sink: list[str] | None = getattr(_local, "sink", None)
    if sink is None:
        show = _previous_show or warnings._showwarning_orig  # type: ignore[attr-defined]
        show(message, category, filename, lineno, file, line)
        return
    if issubclass(category, Image.DecompressionBombWarning):
        return  # decode.py refuses such images itself, with the sizes
    text = " ".join(str(message).split())
    if text and text not in sink:
        sink.append(text)


def _install() -> None:
    global _users, _previous_show, _filter
    with _lock:
        if _users == 0:
            _previous_show = warnings.showwarning
            warnings.showwarning = _show
            # Every warning, not once per Pillow source line: two files with the same
            # corrupt EXIF must both get their note. (Adding a filter also clears the
            # once-per-location registries.)
            warnings.filterwarnings("always", module=r"(PIL|tuitrain\.dataset)(\.|$)")
            _filter = warnings.filters[0]
        _users += 1


def _uninstall() -> None:
    global _users, _previous_show, _filter
    with _lock:
        _users -= 1
        if _users:
            return
        if warnings.showwarning is _show:  # unless someone replaced it since: then theirs stays
            warnings.showwarning = _previous_show
        try:
            warnings.filters.remove(_filter)
        except ValueError:
            pass
        mutated = getattr(warnings, "_filters_mutated", None)
        if mutated is not None:
            mutated()
        _previous_show = _filter = None


@contextmanager
def captured() -> Iterator[list[str]]:
    """Collect Pillow's warnings raised by this thread inside the block (distinct texts, in order).

    Blocks nest: the innermost one gets the warnings (an outer block around a whole folder
    only keeps the hook installed, so each file's own block stays cheap).
    """
    _install()
    outer = getattr(_local, "sink", None)
    notes: list[str] = []
    _local.sink = notes
    try:
        yield notes
    finally:
        _local.sink = outer
        _uninstall()


def as_notes(texts: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Captured warnings as report notes: a few, each saying where it came from."""
    notes = [f"Pillow warns: {text}" for text in texts[:MAX_NOTES]]
    if len(texts) > MAX_NOTES:
        notes.append(f"Pillow warns: ... and {len(texts) - MAX_NOTES} more")
    return tuple(notes)
