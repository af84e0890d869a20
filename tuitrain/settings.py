"""The user's settings file: theme, image protocol and key bindings.

It lives at ``user_config_dir()/settings.toml``::

    theme = "tuitrain-light"
    image_protocol = "auto"          # auto | kitty | sixel | halfcell | unicode

    [keys]                           # binding id = "key,key" (see ? in the app)
    "review.next" = "right,j"

A broken file never stops the app: each problem becomes one message that names
the key, and that key keeps its default. Light on purpose (no pydantic): the
TUI reads it before its first frame.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuitrain.config.errors import one_line, shorten
from tuitrain.resources import user_config_dir

from tuitrain.tomlcompat import tomllib

SETTINGS_FILE = "settings.toml"
IMAGE_PROTOCOLS = ("auto", "kitty", "sixel", "halfcell", "unicode")
DEFAULT_THEME = "tuitrain-dark"
_TOP_LEVEL = ("theme", "image_protocol", "keys")


@dataclass
class Settings:
    """What the user chose; every field has a working default."""

    theme: str = DEFAULT_THEME
    image_protocol: str = "auto"
    keys: dict[str, str] = field(default_factory=dict)  # binding id -> "key1,key2"


@dataclass
class LoadedSettings:
    """Settings plus one message per problem found in the file (each names the key)."""

    settings: Settings
    problems: list[str]
    path: Path


def settings_path() -> Path:
    return user_config_dir() / SETTINGS_FILE


def load_settings(path: Path | None = None) -> LoadedSettings:
    """Read and validate the settings file; a missing file is simply the defaults."""
    path = path or settings_path()
    settings = Settings()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return LoadedSettings(settings, [], path)
    except (OSError, UnicodeDecodeError) as error:
        return LoadedSettings(settings, [f"{path}: cannot read: {error}"], path)
    except tomllib.TOMLDecodeError as error:
        return LoadedSettings(settings, [f"{path}: not valid TOML ({error}); using the defaults"], path)
    problems = [f"{path}: {message}" for message in _apply(data, settings)]
    return LoadedSettings(settings, problems, path)


def _shown(value: Any) -> str:
    """A value as a problem message shows it: repr (one line), at most about 60 characters."""
    return shorten(repr(value), 60)


def _apply(data: dict[str, Any], settings: Settings) -> list[str]:
    problems: list[str] = []
    for key in data:
        if key not in _TOP_LEVEL:
            near = difflib.get_close_matches(key, _TOP_LEVEL, n=1)
            hint = f" (did you mean {near[0]}?)" if near else f" (known: {', '.join(_TOP_LEVEL)})"
            problems.append(f"{shorten(one_line(key), 60)}: unknown setting{hint}")
    theme = data.get("theme", settings.theme)
    if isinstance(theme, str) and theme.strip():
        settings.theme = theme.strip()
    else:
        problems.append(f"theme: must be a theme name, got {_shown(theme)}")
    protocol = data.get("image_protocol", settings.image_protocol)
    if protocol in IMAGE_PROTOCOLS:
        settings.image_protocol = protocol
    else:
        problems.append(f"image_protocol: must be one of {', '.join(IMAGE_PROTOCOLS)}, got {_shown(protocol)}")
    keys = data.get("keys", {})
    if isinstance(keys, dict):
        for binding_id, value in _flatten(keys):
            keys_text, problem = key_list(value)
            if problem:
                problems.append(f"keys.{shorten(one_line(binding_id), 60)}: {problem}")
            else:
                settings.keys[binding_id] = keys_text
    else:
        problems.append(f"keys: must be a table of binding id = \"key,key\", got {_shown(keys)}")
    return problems


def _flatten(table: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """`review.next = "j"` written without quotes is a nested table in TOML: accept both spellings."""
    items: list[tuple[str, Any]] = []
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            items.extend(_flatten(value, f"{name}."))
        else:
            items.append((name, value))
    return items


def key_list(value: Any) -> tuple[str, str | None]:
    """("key1,key2", None) for a string or list of key names, else ("", why it is wrong)."""
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        value = ",".join(value)
    if not isinstance(value, str):
        return "", f"must be a key name or a list of them, got {_shown(value)}"
    keys = [part.strip() for part in value.split(",")]
    if not value.strip() or any(not key or any(ch.isspace() for ch in key) for key in keys):
        return "", f"not a list of key names: {_shown(value)} (write e.g. \"right,j\" or \"ctrl+s\")"
    return ",".join(keys), None


def save_setting(name: str, value: str, path: Path | None = None) -> str | None:
    """Set one top-level setting in the file, keeping the others; returns a problem message or None.

    A file that does not parse is left alone (the user's text is worth more than our choice).
    """
    import tomli_w

    path = path or settings_path()
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        data = {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        return f"{path}: not saved, the file cannot be read ({error})"
    data[name] = value
    temp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".settings-", suffix=".toml")
        with os.fdopen(fd, "wb") as handle:
            tomli_w.dump(data, handle)
        os.replace(temp, path)
        temp = None
    except OSError as error:
        return f"{path}: not saved: {error.strerror or error}"
    finally:
        if temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(temp)
    return None
