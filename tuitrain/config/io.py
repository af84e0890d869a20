"""Config files: TOML in, validated Config out, and back to TOML losslessly (comments kept).

Layers, lowest first: schema defaults <- the preset the file names <- the file <-
`--set` overrides. Lists (concepts, prompts) are replaced whole, never merged by
position.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import ValidationError

from tuitrain.config.errors import ConfigError, ConfigProblem, problems_from_validation
from tuitrain.config.migrate import migrate
from tuitrain.config.schema import Config

from tuitrain.tomlcompat import TOMLLimitError, tomllib

Data = dict[str, Any]

HEADER = (
    "# tuitrain config. Every option, its default and its range: docs/options.md\n"
    "# Check it with: tuitrain check <this file>\n\n"
)


MAX_CONFIG_BYTES = 16 * 1024 * 1024  # a config is a few kB; /dev/zero or a runaway generator is not


def read_toml(path: Path) -> Data:
    """Parse a TOML file; any failure is a ConfigError naming the file (and line).

    Read with a size bound rather than refused when not a regular file: `check <(generate)`
    hands a pipe, which is fine, but an endless one must not grow memory forever.
    """
    source = str(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
        if len(raw) > MAX_CONFIG_BYTES:
            raise ConfigError([ConfigProblem(f"over {MAX_CONFIG_BYTES // 2**20} MiB: not a tuitrain config")], source)
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError([ConfigProblem("no such file")], source) from None
    except IsADirectoryError:
        raise ConfigError([ConfigProblem("is a folder, not a config file")], source) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([ConfigProblem(f"not UTF-8 text ({exc.reason} at byte {exc.start})")], source) from None
    except OSError as exc:
        raise ConfigError([ConfigProblem(f"cannot read: {exc.strerror}")], source) from None
    return parse_toml(text, source)


def parse_toml(text: str, source: str | None = None) -> Data:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([_syntax_problem(exc)], source) from None


def _syntax_problem(exc: Exception) -> ConfigProblem:
    if isinstance(exc, TOMLLimitError):  # valid TOML, past what tuitrain reads: not a syntax error
        return ConfigProblem(str(exc))
    msg = str(exc)
    match = re.search(r"\(at line (\d+), column (\d+)\)", msg)
    line = getattr(exc, "lineno", None)
    column = getattr(exc, "colno", None)
    if match and line is None:
        line, column = int(match.group(1)), int(match.group(2))
    reason = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", msg)
    reason = reason.splitlines()[0] if reason else "invalid TOML"
    return ConfigProblem(f"TOML syntax error: {reason}", line=line, column=column)


def deep_merge(base: Data, over: Data) -> Data:
    """`over` on top of `base`; tables merge key by key, anything else is replaced."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_config(data: Data, source: str | None = None, overrides: Sequence[str] = ()) -> Config:
    """Validate raw data (from TOML) into a Config, reporting every problem at once."""
    from tuitrain.config.overrides import apply_overrides
    from tuitrain.config.presets import PresetNotFound, load_preset_data

    data, problems = migrate(data)
    if problems:
        raise ConfigError(problems, source)
    preset = data.get("preset")
    if isinstance(preset, str) and preset:
        try:
            data = deep_merge(load_preset_data(preset), data)
        except PresetNotFound as exc:
            raise ConfigError([ConfigProblem(str(exc), key="preset")], source) from None
    if overrides:
        data = apply_overrides(data, overrides)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        problems = problems_from_validation(exc, Config)
        if overrides:
            problems = [_blame_override(p, overrides) for p in problems]
        raise ConfigError(problems, source) from None


def _blame_override(problem: ConfigProblem, overrides: Sequence[str]) -> ConfigProblem:
    """A bad value that came from `--set` is reported as the command line's, not the file's."""
    from dataclasses import replace

    from tuitrain.config.overrides import SOURCE

    for item in overrides:
        key = item.partition("=")[0].strip()
        if problem.key == key or problem.key.startswith(key + ".") or problem.key.startswith(key + "["):
            return replace(problem, source=SOURCE)
    return problem


def load_config(path: str | os.PathLike[str], overrides: Sequence[str] = ()) -> Config:
    path = Path(path)
    return parse_config(read_toml(path), str(path), overrides)


def config_data(config: Config) -> Data:
    """The config as plain TOML-ready data; unset optional values are left out."""
    return config.model_dump(mode="python", exclude_none=True)


def dump_config(config: Config) -> str:
    return HEADER + tomli_w.dumps(config_data(config))


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temp file in the same folder + fsync + rename: never a half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def render_config(config: Config, existing: str | None = None) -> str:
    """The file text for `config`: `existing` (the file's current text) with the values
    changed in place, so its comments and layout stay; a fresh file when there is none or
    it cannot be updated faithfully (see toml_update)."""
    if existing is not None:
        from tuitrain.config.toml_update import update_toml

        updated = update_toml(existing, config_data(config))
        if updated is not None:
            return updated
    return dump_config(config)


def save_config(config: Config, path: str | os.PathLike[str]) -> None:
    """Write `config` to `path` atomically; over an existing file, its comments are kept."""
    path = Path(path)
    try:
        existing: str | None = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        existing = None  # no file yet (or unreadable): written fresh
    atomic_write_text(path, render_config(config, existing))


MODEL_FILE_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".bin")


def looks_like_local_path(value: str) -> bool:
    """Whether a model value means a file or folder (else a hub id like `owner/name`)."""
    return value.startswith((".", "/", "~")) or value.endswith(MODEL_FILE_SUFFIXES) or value.count("/") > 1


def resolve_path(value: str, base_dir: Path) -> Path:
    """A path from the config: `~` expanded, relative paths taken from the config's folder."""
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base_dir / p)
