"""The New-run dialog's base model: what it is (checked off the UI thread), completion, recent models.

A new SDXL run used to get the preset's hub id unasked, and learnt only at train time, after
half a minute of the hub client's retries, that the id was neither reachable nor cached. The
dialog now asks, and says at once what the trainer would find: the same header-and-JSON
look as `tuitrain check` (trainer.loading.preflight, torch-free), one hub request, no retries.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

from textual.suggester import Suggester

from tuitrain.resources import user_config_dir

RECENT_FILE = "recent-models.txt"
RECENT_KEEP = 12


def recent_path() -> Path:
    return user_config_dir() / RECENT_FILE


def recent_models(path: Path | None = None) -> list[str]:
    """Base models given to earlier new runs, newest first; a missing or unreadable file is no history."""
    try:
        lines = (path or recent_path()).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    return [line for line in (line.strip() for line in lines) if line][:RECENT_KEEP]


def remember_model(value: str, path: Path | None = None) -> None:
    """Put `value` first in the recent list; failing to write it never stops a run being made."""
    value = value.strip()
    if not value or "\n" in value:
        return
    path = path or recent_path()
    models = [value, *(m for m in recent_models(path) if m != value)][:RECENT_KEEP]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(models) + "\n", encoding="utf-8")
    except OSError:
        pass


def complete_path(value: str) -> str | None:
    """The first entry of the folder being typed that starts with what follows the last '/' (folders end in '/')."""
    if not value or not value.startswith((".", "/", "~")):
        return None
    folder, _, stem = value.rpartition("/")
    real = Path(os.path.expanduser(folder or "/"))
    try:
        names = sorted(entry.name + ("/" if entry.is_dir() else "") for entry in os.scandir(real)
                       if entry.name.startswith(stem) and not (entry.name.startswith(".") and not stem.startswith(".")))
    except OSError:
        return None
    return f"{folder}/{names[0]}" if names and names[0] != stem else None


class BaseModelSuggester(Suggester):
    """Recently used models first, then the local path being typed (Right arrow or End takes it)."""

    def __init__(self, recent: list[str]) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.recent = recent

    async def get_suggestion(self, value: str) -> str | None:
        for model in self.recent:
            if model.startswith(value) and model != value:
                return model
        return complete_path(value)


def describe_base(base: str, preset: str | None, config_dir: Path) -> tuple[bool, str]:
    """(usable, what it is or why not) for `base` (blank: the preset's own), as `tuitrain check` would say it.

    Blocks on one hub request at most (no retries): run it in a worker thread.
    """
    from tuitrain.config import ConfigError, parse_config
    from tuitrain.trainer.loading.errors import ModelLoadError
    from tuitrain.trainer.loading.preflight import inspect_base

    try:
        model = parse_config({"preset": preset} if preset else {}).model
    except ConfigError as exc:
        return False, "\n".join(exc.lines())
    given = base.strip()
    settings = SimpleNamespace(base=given or model.base, vae=model.vae, config=getattr(model, "config", ""))
    prefix = "" if given else f"the preset's {settings.base}: "
    try:
        return True, prefix + inspect_base(settings, model.family, config_dir)
    except ModelLoadError as exc:
        return False, prefix + str(exc)
    except Exception as exc:  # noqa: BLE001 - a check that cannot tell must not break the dialog
        return False, f"{prefix}cannot check it here: {exc}"
