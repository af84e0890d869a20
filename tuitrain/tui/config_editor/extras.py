"""Keys the form has no row for: unknown keys, and tables (or lists of tables) holding something else.

Such a key is a dead end in a generated form: no row shows it, and while it is in the file the
config does not validate, so ctrl+s refuses. The form lists each one as an ExtraKeyRow (its
name and its value as TOML, both editable, plus Delete), so the user can rename it to the
key it was meant to be (the "did you mean" of tuitrain.config.errors), fix its value, or drop it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import tomlkit

from tuitrain.config.errors import suggest_key
from tuitrain.config.options import iter_options
from tuitrain.config.schema import Config
from tuitrain.tomlcompat import tomllib
from tuitrain.tui.config_editor.values import ValueProblem

Data = dict[str, Any]


@dataclass(frozen=True)
class SchemaShape:
    """What the schema expects at each key ('[]' for any list index)."""

    tables: frozenset[str]
    lists_of_tables: frozenset[str]
    values: frozenset[str]


@cache
def schema_shape() -> SchemaShape:
    paths = [option.path for option in iter_options()]
    lists = {p for p in paths if any(q.startswith(p + "[].") for q in paths)}
    tables = {p.rsplit(".", i)[0] for p in paths for i in range(1, p.count(".") + 1)}
    tables = {t for t in tables if not t.endswith("[]")}
    return SchemaShape(frozenset(tables), frozenset(lists), frozenset(p for p in paths if p not in lists))


def extra_keys(data: Data, shape: SchemaShape | None = None) -> list[str]:
    """Every key of `data` the form has no row for, in file order (`lora.rnak`, `data.concepts[0].pth`)."""
    shape = shape or schema_shape()
    found: list[str] = []

    def walk(table: Data, generic: str, real: str) -> None:
        for key, value in table.items():
            g = f"{generic}.{key}" if generic else key
            r = f"{real}.{key}" if real else key
            if g in shape.tables:
                if isinstance(value, dict):
                    walk(value, g, r)
                else:
                    found.append(r)
            elif g in shape.lists_of_tables:
                if isinstance(value, list) and all(isinstance(item, dict) for item in value):
                    for index, item in enumerate(value):
                        walk(item, g + "[]", f"{r}[{index}]")
                else:
                    found.append(r)
            elif g not in shape.values:
                found.append(r)

    walk(data, "", "")
    return found


def kind_of(path: str) -> str | None:
    """'table', 'tables' (a list of them), 'value', or None for a key the schema does not have."""
    generic = re.sub(r"\[\d+\]", "[]", path)
    shape = schema_shape()
    if generic in shape.tables:
        return "table"
    if generic in shape.lists_of_tables:
        return "tables"
    return "value" if generic in shape.values else None


def is_known(path: str) -> bool:
    """Whether the schema has this key (with any list index)."""
    return kind_of(path) is not None


def suggestion(path: str) -> str | None:
    """The key an unknown one was probably meant to be (None for a known key or no good guess)."""
    return None if is_known(path) else suggest_key(path, Config)


def value_text(value: Any) -> str:
    """A value as it would be written after `key = ` in TOML (tables inline)."""
    if isinstance(value, dict):
        table = tomlkit.inline_table()
        table.update(value)
        return table.as_string()
    if isinstance(value, list):
        array = tomlkit.array()
        array.extend(value)
        return array.as_string()
    return tomlkit.item(value).as_string()


def parse_value(text: str) -> Any:
    """The value of `key = TEXT`, or ValueProblem saying why it is not one."""
    try:
        parsed = tomllib.loads(f"v = {text}\n")
    except tomllib.TOMLDecodeError as exc:
        reason = str(exc).split(" (at ", 1)[0]
        raise ValueProblem(f"not a TOML value ({reason}): strings need quotes, tables {{ a = 1 }}") from None
    if set(parsed) != {"v"}:
        raise ValueProblem("one value only (a table is written { a = 1, b = 2 })")
    return parsed["v"]
