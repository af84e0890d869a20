"""The one config schema and everything derived from it (TOML, overrides, docs).

Pure Python + pydantic: imported by the TUI, so never torch. The names below are
imported on first use, so catching a ConfigError (every command does) does not
load pydantic for commands that never touch a config (`tuitrain cull`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tuitrain.config.errors import ConfigError, ConfigProblem
    from tuitrain.config.io import dump_config, load_config, parse_config, save_config
    from tuitrain.config.schema import SCHEMA_VERSION, Config

_EXPORTS = {
    "SCHEMA_VERSION": "tuitrain.config.schema",
    "Config": "tuitrain.config.schema",
    "ConfigError": "tuitrain.config.errors",
    "ConfigProblem": "tuitrain.config.errors",
    "dump_config": "tuitrain.config.io",
    "load_config": "tuitrain.config.io",
    "parse_config": "tuitrain.config.io",
    "save_config": "tuitrain.config.io",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'tuitrain.config' has no attribute {name!r}")
