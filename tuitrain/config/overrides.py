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

from tuitrain.config.errors import ConfigError, ConfigProblem, suggest_key
from tuitrain.config.fields import unwrap_optional
from tuitrain.config.schema import Config

from tuitrain.tomlcompat import tomllib

_SEGMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\[(\d+)\])?$")
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


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Return a copy of `data` with every `key=value` applied; all problems at once."""
    import copy

    data = copy.deepcopy(data)
    problems: list[ConfigProblem] = []
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            problems.append(ConfigProblem(f"expected KEY=VALUE, got {item!r}"))
            continue
        segments: list[tuple[str, int | None]] = []
        for part in key.split("."):
            m = _SEGMENT.match(part)
            if not m:
                segments = []
                break
            segments.append((m.group(1), int(m.group(2)) if m.group(2) is not None else None))
        if not segments:
            problems.append(ConfigProblem("not a key path (like training.learning_rate)", key=key))
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
    node: Any = data
    for i, (name, index) in enumerate(segments):
        last = i == len(segments) - 1
        if index is None:
            if last:
                if unset:
                    node.pop(name, None)
                else:
                    node[name] = value
                return None
            node = node.setdefault(name, {})
            if not isinstance(node, dict):
                return f"{name} is not a table"
        else:
            items = node.setdefault(name, [])
            if not isinstance(items, list):
                return f"{name} is not a list"
            if index > len(items):
                return f"index {index} is past the end of {name} ({len(items)} items; use {len(items)} to add one)"
            if index == len(items):
                items.append({})
            if last:
                items[index] = value
                return None
            node = items[index]
    return None
