"""Text <-> typed values for the form, checked against the option's schema constraints.

Checking as you type is done here, per field, so the message appears under the
field at once; cross-field rules are left to the schema (see document.py).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, get_origin

from tuitrain.config.fields import OptionInfo, unwrap_optional

# Options whose value is a file or folder; they get completion and an existence check.
PATH_OPTIONS = frozenset({"model.base", "model.vae", "model.config", "data.concepts[].path"})
# Of those, the ones where a hub id (owner/name) is also a valid value.
HUB_OPTIONS = frozenset({"model.base", "model.vae"})
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class ValueProblem(ValueError):
    """A field's text that cannot become a valid value; the message is shown under the field."""


def widget_kind(option: OptionInfo) -> str:
    """Which widget edits the option: switch, select, list, path, integer, number or text."""
    inner, _ = unwrap_optional(option.annotation)
    if option.choices is not None:
        return "select"
    if get_origin(inner) is list:
        return "list"
    if inner is bool:
        return "switch"
    if option.path in PATH_OPTIONS:
        return "path"
    if inner is int:
        return "integer"
    if inner is float:
        return "number"
    return "text"


def is_optional(option: OptionInfo) -> bool:
    return unwrap_optional(option.annotation)[1]


def format_value(value: Any) -> str:
    """How a value is shown in a text field; unset is empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _check_range(option: OptionInfo, value: float) -> None:
    c = option.constraints
    if "ge" in c and value < c["ge"]:
        raise ValueProblem(f"must be at least {format_value(c['ge'])}")
    if "gt" in c and value <= c["gt"]:
        raise ValueProblem(f"must be greater than {format_value(c['gt'])}")
    if "le" in c and value > c["le"]:
        raise ValueProblem(f"must be at most {format_value(c['le'])}")
    if "lt" in c and value >= c["lt"]:
        raise ValueProblem(f"must be less than {format_value(c['lt'])}")


def parse_text(option: OptionInfo, text: str) -> Any:
    """The typed value of a text field, or ValueProblem; empty is None for optional options."""
    kind = widget_kind(option)
    stripped = text.strip()
    if not stripped and is_optional(option):
        return None
    if kind == "integer":
        try:
            value: Any = int(stripped)
        except ValueError:
            raise ValueProblem(f"must be a whole number, got {text!r}") from None
        _check_range(option, value)
        return value
    if kind == "number":
        try:
            value = float(stripped)
        except ValueError:
            raise ValueProblem(f"must be a number, got {text!r}") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueProblem(f"must be a finite number, got {text!r}")
        _check_range(option, value)
        return value
    return text


def range_text(option: OptionInfo) -> str:
    """'1 <= x <= 1024' style summary of the constraints, or the choices; '' when free."""
    if option.choices is not None:
        return "one of " + ", ".join(str(c) for c in option.choices)
    c = option.constraints
    low = f"{format_value(c['ge'])} <= " if "ge" in c else f"{format_value(c['gt'])} < " if "gt" in c else ""
    high = f" <= {format_value(c['le'])}" if "le" in c else f" < {format_value(c['lt'])}" if "lt" in c else ""
    return f"{low}x{high}" if low or high else ""


def path_warning(option: OptionInfo, value: str, base_dir: Path) -> str:
    """'' when the path exists (or is a hub id where one is accepted), else what is wrong.

    A warning, not an error: the schema accepts the string and the pre-flight
    check is where a missing folder stops a run.
    """
    value = value.strip()
    if not value:
        return ""
    if option.path in HUB_OPTIONS and _HUB_ID.match(value) and not value.startswith((".", "~")):
        candidate = base_dir / value
        if not candidate.exists():
            return ""  # a hub id, downloaded when training starts
    p = Path(value).expanduser()
    p = p if p.is_absolute() else base_dir / p
    if not p.exists():
        hint = " (nor a hub id like owner/name)" if option.path in HUB_OPTIONS else ""
        return f"not found: {p}{hint}"
    return ""
