"""Walk the schema as a flat list of options: what the form and the docs iterate."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from tuitrain.config.fields import (
    OptionInfo,
    Section,
    constraints_of,
    field_group,
    field_level,
    field_family,
    field_objective,
    unwrap_optional,
)
from tuitrain.config.schema import Config


def _default(info: Any) -> Any:
    if info.default is not PydanticUndefined:
        return info.default
    if info.default_factory is not None:
        value = info.default_factory()
        return value if not isinstance(value, BaseModel) else None
    return PydanticUndefined


def iter_options(model: type[BaseModel] = Config, prefix: str = "", group: str = "model") -> Iterator[OptionInfo]:
    """Every leaf option; a list of tables (concepts, prompts) is one option plus its item options."""
    section_group = model.group if issubclass(model, Section) else group
    for name, info in model.model_fields.items():
        path = f"{prefix}.{name}" if prefix else name
        inner, _ = unwrap_optional(info.annotation)
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            yield from iter_options(inner, path, section_group)
            continue
        yield OptionInfo(
            path=path,
            name=name,
            help=info.description or "",
            default=_default(info),
            annotation=info.annotation,
            level=field_level(info),
            group=field_group(info, section_group),
            constraints=constraints_of(info),
            objective=field_objective(info),
            family=field_family(info),
        )
        if get_origin(inner) is list:
            (item,) = get_args(inner)
            if isinstance(item, type) and issubclass(item, BaseModel):
                yield from iter_options(item, f"{path}[]", section_group)
