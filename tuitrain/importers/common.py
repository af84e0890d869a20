"""What every importer shares: a config table being built, where each value came from, and what was left.

An importer reads the other trainer's keys one by one (`Source.take`), puts what it can say in
tuitrain's terms into the table (`Draft.put`, remembering the source key), and every key it did
not take is listed as not mapped. Values that only say "off" or "unset" (False, 0, "", None,
empty lists: the other GUIs write every field) are not listed: they ask for nothing.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Unmapped:
    """One key of the source config tuitrain's config does not say, and why when it is known."""

    key: str
    value: Any
    why: str = ""

    def line(self) -> str:
        shown = repr(self.value) if not isinstance(self.value, str) else f'"{self.value}"'
        if len(shown) > 60:
            shown = shown[:57] + "..."
        return f"{self.key} = {shown}" + (f": {self.why}" if self.why else "")


@dataclass
class Draft:
    """The tuitrain config table being made, with the source key behind each value."""

    table: dict[str, Any] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)  # tuitrain key -> the source key it came from
    unmapped: list[Unmapped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def put(self, key: str, value: Any, source: str) -> None:
        """Set a dotted key (`training.learning_rate`) of the table."""
        *sections, name = key.split(".")
        table = self.table
        for section in sections:
            table = table.setdefault(section, {})
        table[name] = value
        self.origin[key] = source

    def get(self, key: str, default: Any = None) -> Any:
        table: Any = self.table
        for part in key.split("."):
            if not isinstance(table, dict) or part not in table:
                return default
            table = table[part]
        return table

    def concept(self, values: dict[str, Any], source: str) -> int:
        """Add a [[data.concepts]] table; returns its index."""
        concepts = self.table.setdefault("data", {}).setdefault("concepts", [])
        concepts.append(values)
        index = len(concepts) - 1
        for name in values:
            self.origin[f"data.concepts[{index}].{name}"] = source
        return index

    def set_concept(self, index: int, name: str, value: Any, source: str) -> None:
        self.table["data"]["concepts"][index][name] = value
        self.origin[f"data.concepts[{index}].{name}"] = source

    def skip(self, key: str, value: Any, why: str = "") -> None:
        self.unmapped.append(Unmapped(key, value, why))

    def drop(self, key: str, why: str) -> bool:
        """Take a tuitrain key back out (the config refused it): its source key is listed as not mapped."""
        match = re.fullmatch(r"data\.concepts\[(\d+)\]\.(\w+)", key)
        if match:
            concepts = self.get("data.concepts") or []
            index, name = int(match.group(1)), match.group(2)
            if index >= len(concepts) or name not in concepts[index]:
                return False
            value = concepts[index].pop(name)
        else:
            *sections, name = key.split(".")
            parent = self.get(".".join(sections)) if sections else self.table
            if not isinstance(parent, dict) or name not in parent:
                return False
            value = parent.pop(name)
        self.unmapped.append(Unmapped(self.origin.get(key, key), value, f"{key}: {why}"))
        return True


class Source:
    """The source config's flat keys, each taken at most once; `rest()` is what nobody took."""

    def __init__(self, data: dict[str, Any], prefix: str = "") -> None:
        self.data = data
        self.prefix = prefix
        self.taken: set[str] = set()

    def has(self, key: str) -> bool:
        return key in self.data and is_set(self.data[key])

    def take(self, key: str, default: Any = None) -> Any:
        """The value of `key` (default when absent or only 'unset'), marked as mapped; "true" / "false"
        (SimpleTuner's JSON writes its flags as strings) as booleans."""
        self.taken.add(key)
        value = self.data.get(key, default)
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        return value if is_set(value) or isinstance(value, bool) or value == 0 else default

    def name(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def rest(self, draft: Draft, why: dict[str, str] | None = None) -> None:
        """List every key not taken whose value asks for something."""
        for key, value in self.data.items():
            if key.startswith("__"):  # a format version (OneTrainer's __version), not a setting
                continue
            if key not in self.taken and is_set(value) and value is not False and value != 0:
                draft.skip(self.name(key), value, (why or {}).get(key, ""))


def is_set(value: Any) -> bool:
    """Whether a value says anything: GUIs write "" or None for fields left empty."""
    if value is None:
        return False
    if isinstance(value, str) and value.strip().lower() in ("", "false", "none", "null"):
        return False
    if isinstance(value, (list, dict)) and not value:
        return False
    return True


def as_number(value: Any) -> float | None:
    """A number from a JSON/TOML value that may be a string ("1e-4", "1234"): GUIs store text fields."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def as_int(value: Any) -> int | None:
    number = as_number(value)
    return int(number) if number is not None and number == int(number) else None


def side_of(value: Any) -> int | None:
    """A training resolution from "512", "512,768", "1024x1024", 512 or [512, 768]: the side of a square of about
    the same area, rounded to 64 (what tuitrain's buckets are built around)."""
    if isinstance(value, (list, tuple)):
        numbers = [as_number(v) for v in value]
    elif isinstance(value, str):
        numbers = [as_number(v) for v in re.split(r"[,x× ]+", value.strip()) if v]
    else:
        numbers = [as_number(value)]
    if not numbers or any(n is None or n <= 0 for n in numbers):
        return None
    area = numbers[0] * (numbers[1] if len(numbers) > 1 else numbers[0])  # type: ignore[operator]
    return max(64, round(math.sqrt(area) / 64) * 64)


def resolve(path: str, base: Path) -> str:
    """A path of the source config, absolute: relative ones are taken relative to the source file's folder
    (the other trainers read them relative to where they were started, which the file does not record)."""
    expanded = Path(path).expanduser()
    return str(expanded if expanded.is_absolute() else (base / expanded).resolve())


def model_path(value: str, base: Path) -> str:
    """model.base / model.vae: a path that exists relative to the source file, made absolute; anything else
    (a hub id such as runwayml/stable-diffusion-v1-5, a path on another machine) as written."""
    candidate = Path(resolve(value, base))
    return str(candidate) if candidate.exists() else value


def key_value_list(items: Any) -> dict[str, str]:
    """kohya's optimizer_args / network_args: ["weight_decay=0.01", "betas=0.9,0.99"] or one string
    "weight_decay=0.01 betas=0.9,0.99" -> {"weight_decay": "0.01", "betas": "0.9,0.99"}."""
    if isinstance(items, str):
        items = items.split()
    result: dict[str, str] = {}
    for item in items or []:
        key, sep, value = str(item).partition("=")
        if sep:
            result[key.strip()] = value.strip()
    return result


def truthy(text: str) -> bool:
    return text.strip().lower() in ("true", "1", "yes", "on")
