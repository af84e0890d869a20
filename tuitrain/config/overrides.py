"""`--set key=value` overrides, typed by the schema.

The value's type comes from the option it sets, so `--set model.base=123` stays a
string and `--set training.learning_rate=2e-4` becomes a number. A value that does
not parse is passed through unchanged, so validation names it like any other.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, get_args, get_origin

from pydantic import BaseModel

from tuitrain.config.errors import ConfigError, ConfigProblem, quote, show_value, suggest_key
from tuitrain.config.fields import unwrap_optional
from tuitrain.config.schema import Config

from tuitrain.tomlcompat import tomllib

# Matched whole (fullmatch): "seed\n" is not "seed".
_SEGMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:\[(\d+)\])?")
MAX_INDEX_DIGITS = 9  # no list holds a billion items; int() of 5,000 digits would raise
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
SOURCE = "--set"


def _annotation_at(segments: list[tuple[str, int | None]]) -> tuple[Any, str | None]:
    """The annotation of the option at `segments`, or (None, bad key path)."""
    model: type[BaseModel] = Config
    annotation: Any = None
    walked = ""
    for i, (name, index) in enumerate(segments):
        walked = f"{walked}.{name}" if walked else name
        info = model.model_fields.get(name)
        if info is None:
            return None, walked
        annotation, _ = unwrap_optional(info.annotation)
        if index is not None:
            if get_origin(annotation) is not list:
                return None, walked
            annotation = get_args(annotation)[0]
            walked += f"[{index}]"
        last = i == len(segments) - 1
        if not last:
            if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
                return None, walked + "." + segments[i + 1][0]
            model = annotation
    return info.annotation, None


def _convert(raw: str, annotation: Any) -> tuple[Any, bool]:
    """(value, unset?) for a raw command-line string."""
    inner, optional = unwrap_optional(annotation)
    if optional and raw.strip().lower() in ("", "none", "unset"):
        return None, True
    if inner is str or get_origin(inner) is not None and get_origin(inner) is not list:
        # Strings and choices: take the text as typed (quotes optional).
        text = raw
        if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
            text = text[1:-1]
        return text, False
    if inner is bool:
        low = raw.strip().lower()
        if low in _TRUE:
            return True, False
        if low in _FALSE:
            return False, False
        return raw, False
    if inner is int:
        try:
            return int(raw.strip().replace("_", "")), False
        except ValueError:
            return raw, False
    if inner is float:
        try:
            return float(raw.strip()), False
        except ValueError:
            return raw, False
    # Tables and lists: TOML inline syntax, e.g. [{prompt = "a cat"}]
    try:
        return tomllib.loads(f"v = {raw}")["v"], False
    except tomllib.TOMLDecodeError:
        return raw, False


def _segments(key: str) -> list[tuple[str, int | None]]:
    """`a.b[2].c` as [(a, None), (b, 2), (c, None)]; [] when it is not a key path. An index of
    more than MAX_INDEX_DIGITS digits comes back as -1."""
    segments: list[tuple[str, int | None]] = []
    for part in key.split("."):
        m = _SEGMENT.fullmatch(part)
        if not m:
            return []
        digits = m.group(2)
        index = None if digits is None else int(digits) if len(digits) <= MAX_INDEX_DIGITS else -1
        segments.append((m.group(1), index))
    return segments


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Return a copy of `data` with every `key=value` applied; all problems at once."""
    import copy

    data = copy.deepcopy(data)
    problems: list[ConfigProblem] = []
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            problems.append(ConfigProblem(f"expected KEY=VALUE, got {quote(item)}"))
            continue
        segments = _segments(key)
        if not segments:
            problems.append(ConfigProblem("not a key path (like training.learning_rate)", key=key))
            continue
        if any(index is not None and index < 0 for _, index in segments):
            problems.append(ConfigProblem(f"a list index has at most {MAX_INDEX_DIGITS} digits", key=key))
            continue
        annotation, bad = _annotation_at(segments)
        if bad is not None:
            hint = suggest_key(key, Config)
            problems.append(ConfigProblem(f"unknown key (did you mean {hint}?)" if hint else "unknown key", key=key))
            continue
        value, unset = _convert(raw, annotation)
        problem = _set(data, segments, value, unset)
        if problem:
            problems.append(ConfigProblem(problem, key=key))
    if problems:
        raise ConfigError(problems, SOURCE)
    return data


def _set(data: dict[str, Any], segments: list[tuple[str, int | None]], value: Any, unset: bool) -> str | None:
    """Put `value` at `segments` in `data`; else why not, naming the part of the key that is in the way
    (`--set sampling.prompts[0].seed=1` where prompts[0] is a string, not a table)."""
    node: Any = data
    walked = ""
    for i, (name, index) in enumerate(segments):
        last = i == len(segments) - 1
        if not isinstance(node, dict):
            return f"{walked} is {_kind(node)}, not a table"
        walked = f"{walked}.{name}" if walked else name
        if index is None:
            if last:
                if unset:
                    node.pop(name, None)
                else:
                    node[name] = value
                return None
            node = node.setdefault(name, {})
            continue
        items = node.setdefault(name, [])
        if not isinstance(items, list):
            return f"{walked} is {_kind(items)}, not a list"
        if index > len(items):
            return f"index {index} is past the end of {walked} ({len(items)} items; use {len(items)} to add one)"
        if index == len(items):
            items.append({})
        walked += f"[{index}]"
        if last:
            items[index] = value
            return None
        node = items[index]
    return None


def _kind(value: Any) -> str:
    """What a value in the way is, for a message: 'a string ("a cat")', 'a number (3)'."""
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"a string ({show_value(value)})"
    return f"a value ({show_value(value)})"
