"""How an option is declared: one call carries everything the schema's users need.

The TOML loader, the validation messages, `--set`, the TUI form and docs/options.md
all read the same FieldInfo, so an option is added by one `option(...)` line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.fields import FieldInfo

Level = Literal["essential", "advanced"]

# The form's tabs, in display order.
GROUPS: tuple[str, ...] = (
    "model",
    "data",
    "training",
    "optimizer",
    "lora",
    "sampling",
    "saving",
    "advanced",
)


def option(
    default: Any = ...,
    help: str = "",
    *,
    level: Level = "advanced",
    group: str | None = None,
    objective: str | None = None,
    family: str | None = None,
    default_factory: Any = None,
    **constraints: Any,
) -> Any:
    """Declare one option: default, help text, level and, optionally, its own tab.

    `objective` ("ddpm" or "flow") marks an option only families training with that objective
    use (FamilyInfo.objective): the form shows it only for them. `family` likewise marks an option of
    one family's own section ([flux]).
    `constraints` are pydantic's (gt, ge, lt, le, min_length, ...).
    """
    if not help:
        raise ValueError("every option needs help text: it is shown in the form and the docs")
    if group is not None and group not in GROUPS:
        raise ValueError(f"unknown group {group!r}")
    extra: dict[str, Any] = {"level": level}
    if group is not None:
        extra["group"] = group
    if objective is not None:
        extra["objective"] = objective
    if family is not None:
        extra["family"] = family
    if default_factory is not None:
        return Field(default_factory=default_factory, description=help, json_schema_extra=extra, **constraints)
    return Field(default, description=help, json_schema_extra=extra, **constraints)


def text_toml_can_hold(value: Any) -> Any:
    """A string with lone surrogates (what Python makes of non-UTF-8 bytes in a command-line
    argument, e.g. `--set model.base=caf<0xe9>`) passes as `str` but cannot be written to a
    TOML file, nor passed to code that encodes it: refused here, naming the key."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            from tuitrain.config.errors import quote

            raise ValueError(f"must be UTF-8 text (not bytes of another encoding), got {quote(value)}") from None
    return value


class Section(BaseModel):
    """A table of the config file. Unknown keys are errors; assignments are validated."""

    model_config = ConfigDict(extra="forbid", strict=True, validate_assignment=True, validate_default=True)

    # The tab the section's options go to unless an option names another one.
    group: ClassVar[str] = "advanced"

    _text = field_validator("*")(text_toml_can_hold)


@dataclass(frozen=True)
class OptionInfo:
    """One option as the form and the docs see it."""

    path: str  # dotted key, e.g. "training.learning_rate"; list items use "[]"
    name: str
    help: str
    default: Any
    annotation: Any
    level: Level
    group: str
    constraints: dict[str, Any]
    objective: str | None = None  # only families with this FamilyInfo.objective use the option
    family: str | None = None  # only this family uses the option

    @property
    def choices(self) -> tuple[Any, ...] | None:
        return literal_choices(self.annotation)

    @property
    def type_name(self) -> str:
        return type_name(self.annotation)


def literal_choices(annotation: Any) -> tuple[Any, ...] | None:
    """The allowed values of a Literal (or Optional Literal) annotation."""
    if get_origin(annotation) is Literal:
        return get_args(annotation)
    for arg in get_args(annotation):
        if get_origin(arg) is Literal:
            return get_args(arg)
    return None


def unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    """(inner type, True) for `X | None`, else (annotation, False)."""
    args = get_args(annotation)
    if args and type(None) in args and len(args) == 2:
        inner = next(a for a in args if a is not type(None))
        return inner, True
    return annotation, False


def type_name(annotation: Any) -> str:
    inner, optional = unwrap_optional(annotation)
    if get_origin(inner) is Literal:
        name = "choice"
    elif get_origin(inner) is list:
        (item,) = get_args(inner)
        name = f"list of {item.__name__ if isinstance(item, type) else item}"
    elif isinstance(inner, type):
        name = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}.get(
            inner.__name__, inner.__name__
        )
    else:
        name = str(inner)
    return f"{name} (optional)" if optional else name


def constraints_of(info: FieldInfo) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in info.metadata:
        for key in ("gt", "ge", "lt", "le", "min_length", "max_length"):
            value = getattr(item, key, None)
            if value is not None:
                out[key] = value
    return out


def field_level(info: FieldInfo) -> Level:
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    return extra.get("level", "advanced")  # type: ignore[return-value]


def field_objective(info: FieldInfo) -> str | None:
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    value = extra.get("objective")
    return str(value) if value is not None else None


def field_family(info: FieldInfo) -> str | None:
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    value = extra.get("family")
    return str(value) if value is not None else None


def field_group(info: FieldInfo, section_group: str) -> str:
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    return str(extra.get("group", section_group))
