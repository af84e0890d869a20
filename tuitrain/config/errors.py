"""Config errors as one line each, naming the file, the key and the value.

pydantic's own messages name Python types and internals ("Input should be a valid
integer"); users of a TOML file need `training.batch_size: must be an integer, got
"four"`. Everything a user can get wrong in a config ends up as a ConfigProblem.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pydantic is imported where it is used: this module must stay light
    from pydantic import BaseModel, ValidationError


# How much of a value, key, file name or message one error line shows: enough to recognise
# it, never a screenful (a 100 kB value used to be echoed whole).
SHOWN_VALUE_CHARS = 60
MAX_SOURCE_CHARS = 100
MAX_KEY_CHARS = 80
MAX_MESSAGE_CHARS = 300  # a last resort: messages quote values with `quote`, which keeps them short


# A key path of bare TOML keys (data.concepts[0].path), shown as is; any other is quoted.
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+|\[\d+\])*")


def one_line(text: str) -> str:
    """`text` with every unprintable character escaped (newline as \\n, NUL as \\x00, ESC as \\x1b...),
    so a message is one line and cannot drive the terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def shorten(text: str, limit: int) -> str:
    """`text` if it is at most `limit` characters, else its start and end around '...'."""
    if len(text) <= limit:
        return text
    tail = limit // 4
    return f"{text[: limit - tail - 3]}...{text[-tail:]}"


def quote(text: str, limit: int = SHOWN_VALUE_CHARS) -> str:
    """A string value as an error shows it: in double quotes, on one line, long ones cut with
    their length said (`"aaaa...aa" (100000 characters)`)."""
    if len(text) <= limit:
        return f'"{one_line(text)}"'
    tail = limit // 4
    return f'"{one_line(text[: limit - tail])}...{one_line(text[-tail:])}" ({len(text)} characters)'


@dataclass(frozen=True)
class ConfigProblem:
    """One mistake: where it is (key path, or file line) and what is wrong."""

    message: str
    key: str = ""
    line: int | None = None
    column: int | None = None
    source: str | None = None  # overrides the error's source (e.g. "--set")

    def render(self, source: str | None = None) -> str:
        """One line, whatever the file name, key or message hold (newlines, escapes, 100 kB)."""
        where = shorten(one_line(self.source or source or ""), MAX_SOURCE_CHARS)
        if self.line is not None:
            where = f"{where}:{self.line}" if where else f"line {self.line}"
            if self.column is not None:
                where += f":{self.column}"
        key = self.key if _PLAIN_KEY.fullmatch(self.key) and len(self.key) <= MAX_KEY_CHARS else ""
        if self.key and not key:  # an empty, blank, multi-line or very long key name: quoted, so it shows
            key = quote(self.key, MAX_KEY_CHARS - 20)
        parts = [p for p in (where, key) if p]
        return ": ".join([*parts, shorten(one_line(self.message), MAX_MESSAGE_CHARS)])


class ConfigError(Exception):
    """A config that cannot be used; carries every problem found, not just the first."""

    def __init__(self, problems: Sequence[ConfigProblem], source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        return [p.render(self.source) for p in self.problems]


def key_path(loc: Iterable[Any]) -> str:
    """('data', 'concepts', 0, 'path') -> 'data.concepts[0].path'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def show_value(value: Any) -> str:
    """A value as error messages show it: TOML-like, one line, at most about 80 characters."""
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, int) and value.bit_length() > 3 * SHOWN_VALUE_CHARS:
        try:
            text = str(value)
        except ValueError:  # over sys.get_int_max_str_digits()
            return "a number of thousands of digits"
        return f"{text[:20]}... ({len(text.lstrip('-'))} digits)"
    return shorten(one_line(repr(value)), SHOWN_VALUE_CHARS)


def _bound(ctx: dict[str, Any], key: str) -> str:
    return show_value(ctx.get(key))


def _message(error: dict[str, Any]) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    got = show_value(error.get("input"))
    simple = {
        "greater_than": lambda: f"must be > {_bound(ctx, 'gt')}, got {got}",
        "greater_than_equal": lambda: f"must be >= {_bound(ctx, 'ge')}, got {got}",
        "less_than": lambda: f"must be < {_bound(ctx, 'lt')}, got {got}",
        "less_than_equal": lambda: f"must be <= {_bound(ctx, 'le')}, got {got}",
        "int_type": lambda: f"must be an integer, got {got}",
        "int_from_float": lambda: f"must be a whole number, got {got}",
        "int_parsing": lambda: f"must be an integer, got {got}",
        "float_type": lambda: f"must be a number, got {got}",
        "float_parsing": lambda: f"must be a number, got {got}",
        "finite_number": lambda: f"must be a finite number, got {got}",
        "bool_type": lambda: f"must be true or false, got {got}",
        "bool_parsing": lambda: f"must be true or false, got {got}",
        "string_type": lambda: f"must be a string, got {got}",
        "list_type": lambda: f"must be a list ([[...]] tables), got {got}",
        "model_type": lambda: f"must be a table, got {got}",
        "model_attributes_type": lambda: f"must be a table, got {got}",
        "dict_type": lambda: f"must be a table, got {got}",
        "missing": lambda: "required, but missing",
    }
    if kind in simple:
        return simple[kind]()
    if kind == "literal_error":
        expected = ctx.get("expected", "")
        value = error.get("input")
        # A choice is a short word: after a long list of choices (optimizer.name has ten) a long text is cut
        # shorter than elsewhere, so the line stays readable.
        shown = quote(value, 24) if isinstance(value, str) and len(str(expected)) > 80 else got
        if expected == "True or False":  # a true / false / unset option (data.concepts[].flip): TOML's words
            return f"must be true or false (or left out), got {shown}"
        return f"must be one of {expected}, got {shown}"
    if kind == "value_error":
        msg = str(ctx.get("error", error.get("msg", "")))
        return msg
    return f"{error.get('msg', kind)}, got {got}"


def _known_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every dotted key the schema accepts (list items as `key[]`)."""
    from pydantic import BaseModel

    from tuitrain.config.fields import unwrap_optional

    keys: list[str] = []
    for name, info in model.model_fields.items():
        path = f"{prefix}.{name}" if prefix else name
        keys.append(path)
        inner, _ = unwrap_optional(info.annotation)
        args = getattr(inner, "__args__", ())
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            keys.extend(_known_keys(inner, path))
        elif args and isinstance(args[0], type) and issubclass(args[0], BaseModel):
            keys.extend(_known_keys(args[0], path + "[]"))
    return keys


def _strip_indices(path: str) -> str:
    return re.sub(r"\[\d+\]", "[]", path)


# Names users bring from kohya sd-scripts, diffusers' example scripts and habit.
ALIASES: dict[str, str] = {
    "lr": "training.learning_rate",
    "unet_lr": "training.learning_rate",
    "text_encoder_lr": "lora.text_encoder_lr",
    "network_dim": "lora.rank",
    "dim": "lora.rank",
    "network_alpha": "lora.alpha",
    "network_dropout": "lora.dropout",
    "train_batch_size": "training.batch_size",
    "bs": "training.batch_size",
    "max_train_steps": "training.max_steps",
    "max_train_epochs": "training.epochs",
    "num_train_epochs": "training.epochs",
    "gradient_accumulation_steps": "training.gradient_accumulation",
    "lr_warmup": "training.lr_warmup_steps",
    "optimizer_type": "optimizer.name",
    "optimizer": "optimizer.name",
    "pretrained_model_name_or_path": "model.base",
    "v_parameterization": "model.prediction",
    "v2": "model.family",
    "train_data_dir": "data.concepts",
    "save_every_n_epochs": "saving.every_epochs",
    "save_every_n_steps": "saving.every_steps",
    "sample_every_n_epochs": "sampling.every_epochs",
    "sample_every_n_steps": "sampling.every_steps",
    "save_precision": "saving.dtype",
    "flip_aug": "data.flip",
    "random_crop": "data.crop_jitter",
    "shuffle_caption": "data.shuffle_tags",
    "keep_tokens": "data.keep_tags",
    "caption_dropout_rate": "data.caption_dropout",
    "enable_bucket": "data.bucketing",
    "lr_scheduler_power": "training.lr_power",
    "lr_scheduler_num_cycles": "training.lr_cycles",
    "stop_text_encoder_training": "training.text_encoder_max_steps",
    "ip_noise_gamma": "objective.input_perturbation",
    "debiased_estimation_loss": "objective.debiased_estimation",
}


def suggest_key(unknown: str, root: type[BaseModel]) -> str | None:
    """The nearest valid key for a misspelt or misplaced one."""
    known = _known_keys(root)
    generic = _strip_indices(unknown)
    parent, _, leaf = generic.rpartition(".")
    if leaf in ALIASES:
        return ALIASES[leaf]
    if parent in known and not any(k.startswith(parent + ".") for k in known):
        return parent  # `lora.rank.x`: lora.rank is a value, not a table
    siblings = {k.rpartition(".")[2]: k for k in known if k.rpartition(".")[0] == parent}
    near = difflib.get_close_matches(leaf, list(siblings), n=1, cutoff=0.6)
    close = [siblings[near[0]]] if near else []
    if not close:
        # A right name in the wrong table: `training.rank` -> `lora.rank`.
        leaves = {k.rpartition(".")[2]: k for k in known if "[]" not in k}
        near = difflib.get_close_matches(leaf, list(leaves), n=1, cutoff=0.8)
        close = [leaves[near[0]]] if near else []
    if not close:
        return None
    # Put the real list indices back: data.concepts[0].pth -> data.concepts[0].path
    suggestion = close[0]
    if "[]" in suggestion and "[" in unknown:
        head = unknown.rpartition(".")[0]
        if _strip_indices(head) == suggestion.rpartition(".")[0]:
            suggestion = f"{head}.{suggestion.rpartition('.')[2]}"
    return suggestion


_ITEM_FIELD = re.compile(r"[A-Za-z_]\w*\[\d+\]\.[A-Za-z_]\w*")


def problems_from_validation(exc: ValidationError, root: type[BaseModel]) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    seen: set[tuple[str, str]] = set()
    for error in exc.errors():
        loc = [p for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        path = key_path(loc)
        if error["type"] == "extra_forbidden":
            hint = suggest_key(path, root)
            msg = f"unknown key (did you mean {hint}?)" if hint else "unknown key"
        else:
            msg = _message(error)
            # Validators say "field: message" to point at one field of their table.
            field, sep, rest = msg.partition(": ")
            # ... or "concepts[0].resolution: message", a field of one item of a list of tables in it.
            if sep and (field.isidentifier() or _ITEM_FIELD.fullmatch(field)):
                path = f"{path}.{field}" if path else field
                msg = rest
        if (path, msg) not in seen:
            seen.add((path, msg))
            problems.append(ConfigProblem(msg, key=path))
    return problems
