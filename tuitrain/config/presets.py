"""Presets: partial configs merged over the defaults.

Built-in presets ship with tuitrain (presets/ in the source tree); users keep
their own in ~/.config/tuitrain/presets/, where a preset of the same name wins.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tuitrain.config.errors import quote
from tuitrain.resources import data_dir, user_config_dir


class PresetNotFound(LookupError):
    pass


class PresetNameError(ValueError):
    """A name that cannot be a preset's file name; the message says what is allowed."""


class PresetExists(FileExistsError):
    """A user preset of that name exists and overwriting was not asked for."""


@dataclass(frozen=True)
class PresetInfo:
    name: str
    description: str
    path: Path
    source: Literal["built-in", "user"]
    shadows_builtin: bool = False  # a user preset named like a built-in one (it wins)


# Preset names become file names and `--preset` values: like run names, plus a length cap.
_PRESET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

# Left out of a user preset: values that belong to one run, not to a recipe. The data
# folders are this run's images (a preset is applied to other data sets), saving.name is
# this run's output name, and preset/version/description are set by the preset itself.
# model.base stays: user presets live on this machine, where the base model is.
RUN_SPECIFIC_KEYS: tuple[str, ...] = ("preset", "version", "description", "data.concepts", "saving.name")
# Always written, even at their default, so the file says what it is for.
ALWAYS_KEPT: tuple[str, ...] = ("model.family", "training.method")


def builtin_presets_dir() -> Path:
    return data_dir("presets")


def user_presets_dir() -> Path:
    return user_config_dir() / "presets"


def _description(path: Path) -> str:
    from tuitrain.config.io import read_toml

    try:
        value = read_toml(path).get("description", "")
    except Exception:  # a broken user preset is reported when it is used, not listed
        return "(cannot be read)"
    return value if isinstance(value, str) else ""


def list_presets() -> list[PresetInfo]:
    found: dict[str, PresetInfo] = {}
    for source, folder in (("built-in", builtin_presets_dir()), ("user", user_presets_dir())):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.toml")):
            shadows = source == "user" and path.stem in found
            found[path.stem] = PresetInfo(path.stem, _description(path), path, source, shadows)  # type: ignore[arg-type]
    return sorted(found.values(), key=lambda p: p.name)


def find_preset(name: str) -> PresetInfo:
    # The file itself, not list_presets(): that reads every preset's description (~80 files), and the
    # config editor looks its preset up three times before its first frame.
    if _PRESET_NAME.match(name):
        user, builtin = user_presets_dir() / f"{name}.toml", builtin_presets_dir() / f"{name}.toml"
        if user.is_file():
            return PresetInfo(name, _description(user), user, "user", builtin.is_file())
        if builtin.is_file():
            return PresetInfo(name, _description(builtin), builtin, "built-in")
    import difflib

    names = [p.name for p in list_presets()]
    near = difflib.get_close_matches(name, names, n=1)
    listed = ", ".join(names)
    hint = (f" (did you mean {near[0]}?)" if near else f" (available: {listed})" if len(listed) <= 120
            else " (tuitrain presets lists them)")
    raise PresetNotFound(f"unknown preset {quote(name)}{hint}")


def load_preset_data(name: str) -> dict[str, Any]:
    """The preset's values as a config takes them: without its `preset` key (presets do not chain)
    and without its `description`, which says what the preset is ("rank 16") and would stay on a
    config whose rank the user changed; `tuitrain presets` reads it from the file."""
    from tuitrain.config.io import read_toml

    data = read_toml(find_preset(name).path)
    data.pop("preset", None)
    data.pop("description", None)
    data["preset"] = name
    return data


def preset_name_problem(name: str) -> str:
    """'' for a usable preset name, else what is wrong with it (shown as is)."""
    if not name:
        return "give the preset a name"
    if not _PRESET_NAME.match(name):
        return (f"{quote(name)} is not a usable preset name: use letters, digits, '.', '_' and '-' "
                "(at most 64), starting with a letter or digit")
    return ""


def _pop_key(data: dict[str, Any], dotted: str) -> None:
    *tables, last = dotted.split(".")
    node: Any = data
    for table in tables:
        node = node.get(table) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(last, None)


def _get_key(data: dict[str, Any], dotted: str) -> Any:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _differences(data: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """The part of `data` that differs from `defaults`; tables recurse, lists compare whole."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        default = defaults.get(key)
        if isinstance(value, dict) and isinstance(default, dict):
            inner = _differences(value, default)
            if inner:
                out[key] = inner
        elif key not in defaults or value != default:
            out[key] = copy.deepcopy(value)
    return out


def preset_body(data: dict[str, Any], description: str) -> dict[str, Any]:
    """What a user preset made from a config's data holds: the values that differ from the
    schema defaults (presets are partial, so later default changes still reach them), less
    RUN_SPECIFIC_KEYS, plus ALWAYS_KEPT and the description."""
    from tuitrain.config.io import config_data
    from tuitrain.config.schema import Config

    defaults = config_data(Config())
    body = _differences(data, defaults)
    for key in RUN_SPECIFIC_KEYS:
        _pop_key(body, key)
    for key in ALWAYS_KEPT:
        value = _get_key(data, key)
        if value is None:
            value = _get_key(defaults, key)
        table, _, name = key.partition(".")
        body.setdefault(table, {})[name] = value
    body = {k: v for k, v in body.items() if not (isinstance(v, dict) and not v)}
    return {"description": description.strip(), **body}


def save_user_preset(name: str, data: dict[str, Any], description: str, *, overwrite: bool = False) -> Path:
    """Save a config's data (complete or partial) as the user preset `name`; returns its path.

    Raises PresetNameError for an unusable name, PresetExists when a user preset of that
    name exists and `overwrite` is false, and ConfigError when the preset would not load.
    """
    import tomli_w

    from tuitrain.config.io import atomic_write_text, parse_config

    if problem := preset_name_problem(name):
        raise PresetNameError(problem)
    path = user_presets_dir() / f"{name}.toml"
    if path.exists() and not overwrite:
        raise PresetExists(f"a user preset named {name!r} exists: {path}")
    body = preset_body(data, description)
    parse_config(copy.deepcopy(body), f"preset {name}")  # what `--preset name` will load must be valid
    header = "# A tuitrain preset: a partial config merged over the defaults (`tuitrain presets` lists it).\n"
    atomic_write_text(path, header + tomli_w.dumps(body))
    return path
