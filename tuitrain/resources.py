"""Where the data files shipped with tuitrain live.

`presets/` and `themes/` sit at the top of the source tree; a wheel carries copies
under `tuitrain/_data/`. Look in the wheel location first, then in the source tree,
so an editable install and a plain checkout behave like an installed wheel.
"""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """The built-in folder `name` ("presets" or "themes")."""
    installed = _PACKAGE_DIR / "_data" / name
    if installed.is_dir():
        return installed
    source = _PACKAGE_DIR.parent / name
    if source.is_dir():
        return source
    raise FileNotFoundError(
        f"tuitrain's built-in {name}/ folder is missing (looked in {installed} and {source}); "
        "the installation is incomplete: reinstall tuitrain"
    )


def user_config_dir() -> Path:
    """The user's tuitrain config folder (user presets, themes, settings)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "tuitrain"


def user_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tuitrain"
