"""The one config schema and everything derived from it (TOML, overrides, docs).

Pure Python + pydantic: imported by the TUI, so never torch.
"""

from tuitrain.config.errors import ConfigError, ConfigProblem
from tuitrain.config.io import dump_config, load_config, parse_config, save_config
from tuitrain.config.schema import SCHEMA_VERSION, Config

__all__ = [
    "SCHEMA_VERSION",
    "Config",
    "ConfigError",
    "ConfigProblem",
    "dump_config",
    "load_config",
    "parse_config",
    "save_config",
]
