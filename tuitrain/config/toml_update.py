"""Write new values into an existing TOML text, keeping the user's comments and layout.

Saving a config used to rewrite the file from scratch (tomli-w), which dropped every comment
(`# my note`, `rank = 8  # keep small`). Here the existing file is parsed with tomlkit, the
round-trip TOML library, and changed in place: a changed value is replaced (its trailing
comment stays), a key that is gone is removed, a new key is added after the last key of its
table (before the comments that lead into the next table), a new table goes at the end.
Values that are equal are left exactly as written (`1e-4` stays `1e-4`, `alpha = 16` stays
an integer for a float option).
"""

from __future__ import annotations

from typing import Any

import tomlkit
from tomlkit.container import Container
from tomlkit.exceptions import TOMLKitError
from tomlkit.items import AoT, InlineTable, Item, Table

from tuitrain.tomlcompat import tomllib

Data = dict[str, Any]


def same_value(a: Any, b: Any) -> bool:
    """Equal as config values: 16 and 16.0 are the same number, but true is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def update_toml(text: str, data: Data) -> str | None:
    """`text` changed to hold exactly `data`, comments kept; None when that cannot be done
    faithfully (not TOML tomlkit reads, or a layout whose result would not load as `data`)."""
    try:
        document = tomlkit.parse(text)
        _update_table(document, data)
        result = tomlkit.dumps(document)
        if same_value(tomllib.loads(result), data):
            return result
    except (TOMLKitError, tomllib.TOMLDecodeError, ValueError, TypeError, KeyError):
        pass
    return None


def _is_table(item: Any) -> bool:
    return isinstance(item, (Table, InlineTable, Container))


def _is_list_of_tables(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _update_table(table: Table | InlineTable | Container, data: Data) -> None:
    for key in [k for k in table if k not in data]:
        del table[key]
    for key, value in data.items():
        if key not in table:
            _add(table, key, value)
            continue
        old = table[key]
        if isinstance(value, dict) and _is_table(old):
            _update_table(old, value)
        elif _is_list_of_tables(value) and isinstance(old, AoT):
            _update_array_of_tables(old, value)
        elif same_value(old.unwrap() if isinstance(old, Item) else old, value):
            continue
        elif isinstance(value, (dict, list)) or _is_table(old) or isinstance(old, AoT):
            del table[key]  # a table, or a value becoming one: placed anew
            _add(table, key, value)
        else:
            table[key] = value  # tomlkit keeps the old value's trailing comment


def _update_array_of_tables(array: AoT, items: list[Data]) -> None:
    for index, item in enumerate(items[: len(array)]):
        _update_table(array[index], item)
    while len(array) > len(items):
        del array[len(array) - 1]
    for item in items[len(array):]:
        table = tomlkit.table()
        table.update(item)
        table.add(tomlkit.nl())  # a blank line before whatever follows, as the others have
        array.append(table)


def _add(table: Table | InlineTable | Container, key: str, value: Any) -> None:
    """A new key: values after the table's last key (not after the comments that lead into
    the next table), tables and arrays of tables at the end."""
    if isinstance(value, dict) or _is_list_of_tables(value) or isinstance(table, InlineTable):
        table[key] = value
        return
    container = table if isinstance(table, Container) else table.value
    position = 0
    for index, (name, item) in enumerate(container.body):
        if isinstance(item, (Table, AoT)):
            break
        if name is not None:
            position = index + 1
    if position >= len(container.body):
        table.append(key, value)
    else:
        container._insert_at(position, key, tomlkit.item(value))  # noqa: SLF001  (tomlkit has no public insert)
