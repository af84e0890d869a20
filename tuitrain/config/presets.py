"""Presets: partial configs merged over the defaults.

Built-in presets ship with tuitrain (presets/ in the source tree); users keep
their own in ~/.config/tuitrain/presets/, where a preset of the same name wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tuitrain.resources import data_dir, user_config_dir


class PresetNotFound(LookupError):
    pass


@dataclass(frozen=True)
class PresetInfo:
    name: str
    description: str
    path: Path
    source: Literal["built-in", "user"]


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
            found[path.stem] = PresetInfo(path.stem, _description(path), path, source)  # type: ignore[arg-type]
    return sorted(found.values(), key=lambda p: p.name)


def find_preset(name: str) -> PresetInfo:
    for info in list_presets():
        if info.name == name:
            return info
    import difflib

    names = [p.name for p in list_presets()]
    near = difflib.get_close_matches(name, names, n=1)
    hint = f" (did you mean {near[0]}?)" if near else f" (available: {', '.join(names)})"
    raise PresetNotFound(f"unknown preset {name!r}{hint}")


def load_preset_data(name: str) -> dict[str, Any]:
    """The preset's raw TOML data, without its `preset` key (presets do not chain)."""
    from tuitrain.config.io import read_toml

    data = read_toml(find_preset(name).path)
    data.pop("preset", None)
    data["preset"] = name
    return data


def save_user_preset(name: str, data: dict[str, Any], description: str) -> Path:
    """Save `data` (a config's raw data) as a user preset."""
    import tomli_w

    from tuitrain.config.io import atomic_write_text

    if not name or any(c in name for c in "/\\") or name.startswith("."):
        raise ValueError(f"not a usable preset name: {name!r}")
    body = {k: v for k, v in data.items() if k not in ("preset",)}
    body["description"] = description
    path = user_presets_dir() / f"{name}.toml"
    atomic_write_text(path, tomli_w.dumps(body))
    return path
