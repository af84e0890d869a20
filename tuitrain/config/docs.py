"""docs/options.md, generated from the schema (tests keep the file in sync).

Regenerate with:  python -m tuitrain.config.docs > docs/options.md
"""

from __future__ import annotations

import json
import sys

from pydantic_core import PydanticUndefined

from tuitrain.config.options import iter_options


def _value(v: object) -> str:
    if v is PydanticUndefined:
        return "required"
    if v is None:
        return "unset"
    if isinstance(v, bool):
        return "`true`" if v else "`false`"
    if isinstance(v, str):
        return f'`"{v}"`'
    if isinstance(v, list):
        return "`[]`" if not v else f"`{json.dumps(v)}`"
    return f"`{v!r}`"


def _allowed(option) -> str:  # type: ignore[no-untyped-def]
    if option.choices:
        return ", ".join(f"`{c}`" for c in option.choices)
    c = option.constraints
    parts = []
    for key, sym in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
        if key in c:
            parts.append(f"{sym} {c[key]}")
    return ", ".join(parts)


def render() -> str:
    lines = [
        "# tuitrain options",
        "",
        "Every option of a tuitrain config (`config.toml`), generated from the schema in",
        "`tuitrain/config/schema.py`. Set them in the file, in the TUI's config editor, or on",
        "the command line with `--set key=value`. Options marked **essential** are the ones",
        "the config editor's essential view shows.",
        "",
        "Regenerate: `python -m tuitrain.config.docs > docs/options.md`",
    ]
    tables: dict[str, list[str]] = {}
    for opt in iter_options():
        head = opt.path.rsplit(".", 1)[0] if "." in opt.path else "top level"
        essential = " **essential**" if opt.level == "essential" else ""
        help_text = opt.help.replace("|", "\\|")
        tables.setdefault(head, []).append(
            f"| `{opt.path}` | {opt.type_name} | {_value(opt.default)} | {_allowed(opt)} | {help_text}{essential} |"
        )
    for head, rows in tables.items():
        title = "Top level" if head == "top level" else (f"[[{head[:-2]}]]" if head.endswith("[]") else f"[{head}]")
        lines += ["", f"## {title}", "", "| key | type | default | allowed | description |", "|---|---|---|---|---|"]
        lines += rows
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
