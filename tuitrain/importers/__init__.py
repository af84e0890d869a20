"""`tuitrain import`: configs of kohya (sd-scripts / kohya_ss), OneTrainer and SimpleTuner as tuitrain configs.

Each trainer has its module (kohya, onetrainer, simpletuner) that maps the keys it knows onto a
config table (common.Draft). Here the file is read, its trainer recognised, and the table checked
against the schema: a value the schema refuses (a setting the chosen family cannot take, a range)
is taken back out and listed beside the keys nobody mapped, so what is written always loads.
Torch-free: it runs in the CLI process.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuitrain.importers.common import Draft, Unmapped

class ImportProblem(Exception):
    """A file that cannot be imported at all (unreadable, not a config of a known trainer): one line."""


@dataclass
class ImportResult:
    """The imported config (valid), what it came from, and what could not be said in it."""

    source: Path
    trainer: str
    table: dict[str, Any]
    unmapped: list[Unmapped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def read_file(path: Path) -> Any:
    """A JSON or TOML file's data (by content: kohya writes both), or ImportProblem naming the file."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportProblem(f"{path}: cannot read it ({getattr(exc, 'strerror', None) or exc})") from None
    from tuitrain.tomlcompat import tomllib

    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        json_error = exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        error = json_error if text.lstrip().startswith("{") else exc
        kind = "valid JSON" if error is json_error else "valid TOML or JSON"
        raise ImportProblem(f"{path}: not {kind} ({error})") from None


def _read_toml(path: Path) -> dict[str, Any]:
    data = read_file(path)
    if not isinstance(data, dict):
        raise ValueError("not a table")
    return data


def import_file(path: Path, data_config: Path | None = None) -> ImportResult:
    """Map the config at `path` (and SimpleTuner's multidatabackend.json, `data_config` or the one it names)."""
    from tuitrain.importers import kohya, onetrainer, simpletuner

    path = Path(path)
    data = read_file(path)
    base = path.resolve().parent
    draft = Draft()
    try:
        if simpletuner.is_backend_list(data):
            trainer = "simpletuner (multidatabackend.json)"
            draft.notes.append("only the data sets were imported; give SimpleTuner's config.json to import the rest")
            simpletuner.import_backends(data, base, draft, path.name)
        elif not isinstance(data, dict):
            raise ImportProblem(f"{path}: not a config of kohya, OneTrainer or SimpleTuner (a JSON list)")
        elif onetrainer.is_onetrainer(data):
            trainer = "onetrainer"
            onetrainer.import_onetrainer(data, base, draft)
        elif simpletuner.is_simpletuner(data):
            trainer = "simpletuner"
            simpletuner.import_simpletuner(data, base, draft, data_config)
        elif kohya.is_kohya(data):
            trainer = "kohya_ss" if ("LoRA_type" in data or "max_resolution" in data) else "kohya"
            kohya.import_kohya(data, base, draft, _read_toml)
        else:
            raise ImportProblem(
                f"{path}: not a config tuitrain knows (kohya sd-scripts / kohya_ss, OneTrainer, SimpleTuner); "
                "none of their keys (pretrained_model_name_or_path, model_type, model_family, ...) is in it")
    except ValueError as exc:  # an importer's refusal (a family tuitrain does not train): one line
        raise ImportProblem(f"{path}: {exc}") from None
    if data_config is not None and trainer != "simpletuner":
        draft.notes.append(f"--data-config {data_config} is only read with SimpleTuner's config.json")
    _settle(draft)
    return ImportResult(path, trainer, draft.table, draft.unmapped, draft.notes)


def _settle(draft: Draft) -> None:
    """Take out what the schema refuses (each named with the reason) until the table is a valid config."""
    from tuitrain.config import ConfigError, parse_config

    for _ in range(50):
        try:
            parse_config(draft.table)
            return
        except ConfigError as exc:
            dropped = False
            for problem in exc.problems:
                dropped = draft.drop(problem.key, problem.message) or dropped
            if not dropped:
                raise ImportProblem("the imported values do not make a valid config: "
                                    + "; ".join(exc.lines())) from None
    raise ImportProblem("the imported values do not make a valid config")


def render(result: ImportResult) -> str:
    """The config file's text: a comment saying where it came from and what was not mapped, then the TOML."""
    from tuitrain.config import dump_config, parse_config

    config = parse_config(result.table)
    head = [f"# Imported by `tuitrain import` from {result.source} ({result.trainer})."]
    head += [f"# note: {note}" for note in result.notes]
    if result.unmapped:
        head.append(f"# Not mapped ({len(result.unmapped)}):")
        head += [f"#   {item.line()}".replace("\n", " ") for item in result.unmapped]
    text = "\n".join(head) + "\n" + dump_config(config)
    return text if text.endswith("\n") else text + "\n"
