"""`tomllib` on every supported Python (the standard library from 3.11, tomli on 3.10), whose
`loads` fails with TOMLDecodeError only.

Every TOML text tuitrain reads comes through here: configs, presets, settings, themes, run
configs, `--set` values. The parser recurses once per level of nesting, so 20,000 `[` were a
RecursionError (issue 14); a number of over 4,300 digits was a bare ValueError; and dotted
keys (`a.b.c... = 1`) parse, without recursing, into tables nested thousands deep that each
later step (merging a preset, copying, validating, listing key bindings) recursed into. Here
all three are a TOMLDecodeError with a one-line message, like any other syntax error.
"""

from __future__ import annotations

import sys
from typing import Any, BinaryIO

if sys.version_info >= (3, 11):
    import tomllib as _tomllib
else:  # pragma: no cover - Python 3.10 only
    import tomli as _tomllib

MAX_NESTING = 32  # tables and arrays inside one another; tuitrain's own files nest 4 deep at most


class TOMLLimitError(_tomllib.TOMLDecodeError):
    """TOML the parser takes, or would, but tuitrain does not: too deep, or a number too long."""

    def __init__(self, msg: str) -> None:
        ValueError.__init__(self, msg)  # not TOMLDecodeError's (its arguments differ between versions)


TOO_DEEP = f"nested too deeply (at most {MAX_NESTING} levels of tables and arrays)"


def nesting(value: Any) -> int:
    """How many tables and arrays deep `value` goes, counted without recursing (stops past MAX_NESTING)."""
    deepest = 0
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        if deepest > MAX_NESTING:
            break
        stack.extend((child, depth) for child in children)
    return deepest


def loads(text: str, /, **kwargs: Any) -> dict[str, Any]:
    """tomllib.loads, with nesting bounded and every failure a TOMLDecodeError."""
    try:
        data = _tomllib.loads(text, **kwargs)
    except _tomllib.TOMLDecodeError:
        raise
    except RecursionError:
        raise TOMLLimitError(TOO_DEEP) from None
    except ValueError as exc:  # int() of a number of over 4,300 digits
        reason = "a number of over 4,300 digits" if "digits" in str(exc) else str(exc).splitlines()[0]
        raise TOMLLimitError(f"cannot read a value: {reason}") from None
    if nesting(data) > MAX_NESTING:
        raise TOMLLimitError(TOO_DEEP)
    return data


def load(fp: BinaryIO, /, **kwargs: Any) -> dict[str, Any]:
    """tomllib.load, bounded like loads."""
    return loads(fp.read().decode(), **kwargs)


class _BoundedTomllib:
    """The tomllib module's API (loads, load, TOMLDecodeError), bounded as above."""

    TOMLDecodeError = _tomllib.TOMLDecodeError
    loads = staticmethod(loads)
    load = staticmethod(load)


tomllib = _BoundedTomllib()

__all__ = ["MAX_NESTING", "TOMLLimitError", "tomllib"]
