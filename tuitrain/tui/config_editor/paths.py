"""Addressing values inside nested config data by the keys users and errors use.

`data.concepts[0].path` is the same string ConfigProblem.key holds, so an error
lands on the field that caused it without a translation table.
"""

from __future__ import annotations

import re
from typing import Any

_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")

Key = str | int


def split_path(path: str) -> list[Key]:
    """'data.concepts[0].path' -> ['data', 'concepts', 0, 'path']."""
    return [name if name else int(index) for name, index in _TOKEN.findall(path)]


def join_path(keys: list[Key]) -> str:
    """['data', 'concepts', 0] -> 'data.concepts[0]' (split_path backwards)."""
    out = ""
    for key in keys:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else key)
    return out


def get_value(data: Any, path: str, default: Any = None) -> Any:
    node = data
    for key in split_path(path):
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return default
    return node


def set_value(data: dict[str, Any], path: str, value: Any) -> None:
    """Set a value, creating tables on the way; `None` removes the key (TOML has no null).

    A table that holds something else (`lora = 5` in a broken file) becomes a table: a value
    set inside it says the user wants one.
    """
    keys = split_path(path)
    node: Any = data
    for key in keys[:-1]:
        if isinstance(key, int):
            node = node[key]
        else:
            child = node.get(key)
            if not isinstance(child, (dict, list)):
                child = node[key] = {}
            node = child
    last = keys[-1]
    if value is None:
        if isinstance(node, dict):
            node.pop(last, None)
        return
    node[last] = value


KEY = re.compile(r"^[A-Za-z0-9_-]+(\[\d+\])*(\.[A-Za-z0-9_-]+(\[\d+\])*)*$")


def is_key(text: str) -> bool:
    """Whether `text` is a key as the form and the errors spell them (`lora.rank`, `data.concepts[0].path`)."""
    return bool(KEY.match(text))


def item_path(option_path: str, index: int) -> str:
    """'data.concepts[].path', 2 -> 'data.concepts[2].path'."""
    return option_path.replace("[]", f"[{index}]", 1)
