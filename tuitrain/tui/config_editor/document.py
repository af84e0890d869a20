"""The config being edited: its data, the preset it is compared with, validation and saving.

The form edits the *effective* data (defaults <- preset <- file), so every field
shows the value the trainer would use; saving validates it through the same
schema as `tuitrain check` and writes a complete file, which loads to the same
Config as before (the round-trip guarantee of the issue).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuitrain.config.errors import ConfigError, ConfigProblem
from tuitrain.config.fields import OptionInfo
from tuitrain.config.io import (
    config_data,
    deep_merge,
    looks_like_local_path,
    parse_config,
    read_toml,
    save_config,
)
from tuitrain.config.options import iter_options
from tuitrain.config.schema import Config
from tuitrain.tui.config_editor.extras import extra_keys, is_known, kind_of
from tuitrain.tui.config_editor.paths import get_value, is_key, join_path, set_value, split_path

Data = dict[str, Any]

# Loading a preset keeps these (this run's own model, images and prompts); everything else
# takes the preset's value. The load dialog says so.
KEPT_ON_PRESET_LOAD = ("model.base", "model.vae", "data.concepts", "sampling.prompts")


def all_options() -> list[OptionInfo]:
    """Every option of the schema, in declaration order (the form is generated from this)."""
    return list(iter_options())


def preset_baseline(preset: str) -> Data:
    """Defaults with the preset on top: what 'changed from the preset' compares with."""
    try:
        return config_data(parse_config({"preset": preset} if preset else {}))
    except ConfigError:
        return config_data(Config())


@dataclass
class FileStamp:
    """What the file looked like when read or written, to notice edits made elsewhere."""

    mtime_ns: int
    size: int

    @classmethod
    def of(cls, path: Path) -> FileStamp | None:
        try:
            st = path.stat()
        except OSError:
            return None
        return cls(st.st_mtime_ns, st.st_size)


@dataclass
class ConfigDocument:
    path: Path
    data: Data
    baseline: Data
    saved: Data
    field_errors: dict[str, str] = field(default_factory=dict)  # per-field typing errors
    stamp: FileStamp | None = None
    load_problems: list[str] = field(default_factory=list)

    @classmethod
    def open(cls, path: Path) -> ConfigDocument:
        """Read the file; a config with schema errors still opens, with the errors listed.

        A TOML syntax error cannot be shown in a form and raises ConfigError.
        """
        raw = read_toml(path)
        problems: list[str] = []
        try:
            data = config_data(parse_config(raw, str(path)))
        except ConfigError as exc:
            problems = exc.lines()
            preset = raw.get("preset") if isinstance(raw.get("preset"), str) else ""
            data = deep_merge(preset_baseline(preset or ""), raw)
        baseline = preset_baseline(str(data.get("preset") or ""))
        return cls(path, data, baseline, copy.deepcopy(data), stamp=FileStamp.of(path), load_problems=problems)

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    @property
    def dirty(self) -> bool:
        return self.data != self.saved

    def get(self, path: str) -> Any:
        return get_value(self.data, path)

    def set(self, path: str, value: Any) -> None:
        self.field_errors.pop(path, None)
        set_value(self.data, path, value)

    def extra_keys(self) -> list[str]:
        """Keys the form has no row for (unknown ones, tables that are not tables): see extras.py."""
        return extra_keys(self.data)

    def rename(self, old: str, new: str) -> None:
        """Move a key's value to another key, as `rnak = 8` meant `rank = 8`; a table moved
        onto a table is merged into it. ValueError (the reason) when `new` cannot hold it."""
        new = new.strip()
        if new == old:
            return
        if not is_key(new):
            raise ValueError(f"{new!r} is not a key: names like lora.rank or data.concepts[0].path")
        keys = split_path(new)
        for depth in range(1, len(keys)):
            prefix = join_path(keys[:depth])
            parent = get_value(self.data, prefix)
            if isinstance(keys[depth], int) and not (isinstance(parent, list) and keys[depth] < len(parent)):
                raise ValueError(f"{prefix} has no item [{keys[depth]}]")
            if parent is not None and not isinstance(parent, (dict, list)):
                raise ValueError(f"{prefix} is a value, not a table: {new} cannot go in it")
        value = copy.deepcopy(self.get(old))
        kind = kind_of(new)
        if kind == "table" and not isinstance(value, dict):
            raise ValueError(f"{new} is a table of options: rename to one of its keys ({new}.<name>)")
        if kind == "value" and isinstance(value, dict):
            raise ValueError(f"{new} holds one value, not a table")
        set_value(self.data, old, None)
        self.field_errors.pop(old, None)
        there = self.get(new)
        self.set(new, deep_merge(there, value) if isinstance(there, dict) and isinstance(value, dict) else value)

    def delete(self, path: str) -> None:
        """Drop a key the schema does not know; a known one goes back to the preset's value."""
        self.field_errors.pop(path, None)
        set_value(self.data, path, copy.deepcopy(self.baseline_value(path)) if is_known(path) else None)

    def baseline_value(self, path: str) -> Any:
        return get_value(self.baseline, path)

    def differs_from_preset(self, path: str) -> bool:
        return self.get(path) != self.baseline_value(path)

    def row_differs_from_preset(self, path: str) -> bool:
        """A row's ● mark: an item of a list is never marked alone, the list is compared as a whole (ListEditor)."""
        return "[" not in path and self.differs_from_preset(path)

    def validate(self) -> Config | ConfigError:
        """The Config the data makes, or every problem (typing errors first, each naming its key)."""
        if self.field_errors:
            return ConfigError([ConfigProblem(msg, key=key) for key, msg in self.field_errors.items()], str(self.path))
        try:
            return parse_config(copy.deepcopy(self.data), str(self.path))
        except ConfigError as exc:
            return exc

    def save(self) -> ConfigError | None:
        """Write the file if the data is valid; the error otherwise (nothing written)."""
        result = self.validate()
        if isinstance(result, ConfigError):
            return result
        save_config(result, self.path)
        self.data = config_data(result)
        self.saved = copy.deepcopy(self.data)
        self.stamp = FileStamp.of(self.path)
        return None

    def changed_on_disk(self) -> bool:
        return FileStamp.of(self.path) != self.stamp

    def load_preset(self, name: str) -> None:
        """Start over from a preset, keeping what belongs to this run (see KEPT_ON_PRESET_LOAD).

        The base model stays only when the preset is for the same model family: an SD 1.5
        checkpoint under an SDXL preset would not load. The baseline (what the ● marks
        compare with) becomes the new preset.
        """
        keep = {key: self.get(key) for key in KEPT_ON_PRESET_LOAD}
        baseline = preset_baseline(name)
        if get_value(baseline, "model.family") != self.get("model.family"):
            keep.pop("model.base", None)
            keep.pop("model.vae", None)
        self.baseline = baseline
        self.data = copy.deepcopy(baseline)
        for key, value in keep.items():
            if value:
                set_value(self.data, key, copy.deepcopy(value))
        self.field_errors.clear()

    def preset_data(self) -> Data:
        """The data to save as a user preset: local model paths made absolute (the preset is
        used from other runs' folders); what is left out is decided by config.presets."""
        data = copy.deepcopy(self.data)
        for key in ("model.base", "model.vae", "model.config"):
            value = get_value(data, key)
            if isinstance(value, str) and value and looks_like_local_path(value):
                path = Path(value).expanduser()
                if not path.is_absolute():
                    set_value(data, key, str((self.base_dir / path).resolve()))
        return data
