"""Making a run: one function behind `tuitrain new` and the TUI's new-run dialog."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tuitrain.runs.layout import RunDir, valid_run_name

class RunNotCreated(ValueError):
    """Why the run could not be made, in words meant for the user (the config's own errors
    come as ConfigError, one line per key)."""


def base_model_value(value: str) -> str:
    """A local path becomes absolute (the config lives elsewhere); a hub id stays as is."""
    path = Path(value).expanduser()
    if path.exists():
        return str(path.resolve())
    from tuitrain.config.io import looks_like_local_path

    if looks_like_local_path(value):
        raise RunNotCreated(f"base model {value}: no such file or folder")
    return value


def create_run(
    workspace: Path,
    name: str,
    preset: str | None = None,
    data: str = "",
    base: str = "",
    overrides: Sequence[str] = (),
) -> RunDir:
    """A run directory with a complete config.toml; nothing is written unless the config is valid."""
    from tuitrain.config import parse_config, save_config

    name = name.strip()
    if not valid_run_name(name):
        raise RunNotCreated(
            f"{name!r} is not a usable run name: use letters, digits, '.', '_' and '-', starting with a letter or digit"
        )
    run = RunDir(workspace / name)
    if run.root.exists():
        raise RunNotCreated(f"run {name!r} already exists at {run.root}")
    payload: dict[str, Any] = {}
    if preset:
        payload["preset"] = preset
        # Where it came from, which stays true whatever the user changes (the preset's own line would not).
        payload["description"] = f"Made from the preset {preset}."
    if base.strip():
        payload.setdefault("model", {})["base"] = base_model_value(base.strip())
    if data.strip():
        folder = Path(data.strip()).expanduser()
        if not folder.is_dir():
            raise RunNotCreated(f"data folder {data.strip()}: no such folder")
        # check --data's own rule: a kohya parent ("10_cat/", "5_coffee/") is one concept per sub-folder,
        # and kohya_ss's img/ + reg/ layout gives the reg/ folders role = "regularisation"
        from tuitrain.dataset import discover_concepts

        payload["data"] = {"concepts": [
            {"path": str(spec.path), **({"role": spec.role} if spec.role != "train" else {})}
            for spec in discover_concepts(folder.resolve())
        ]}
    config = parse_config(payload, overrides=overrides)
    run.create_folders()
    save_config(config, run.config)
    return run
