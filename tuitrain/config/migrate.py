"""Upgrades of older config files, one step per format version.

A step takes the raw TOML data of version N and returns version N + 1. Keep every
step forever: a run directory from a year ago must still load.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tuitrain.config.errors import ConfigProblem, show_value
from tuitrain.config.schema import SCHEMA_VERSION

Data = dict[str, Any]

# MIGRATIONS[n] upgrades version n to n + 1. Version 1 is the first format.
MIGRATIONS: dict[int, Callable[[Data], Data]] = {}


def migrate(data: Data) -> tuple[Data, list[ConfigProblem]]:
    """Bring raw config data to SCHEMA_VERSION; a file without `version` is current."""
    version = data.get("version", SCHEMA_VERSION)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        return data, [ConfigProblem(f"must be a positive integer, got {show_value(version)}", key="version")]
    while version < SCHEMA_VERSION:
        data = MIGRATIONS[version](dict(data))
        version += 1
        data["version"] = version
    return data, []
