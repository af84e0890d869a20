"""Property test over configs: whatever a config file or a `--set` holds, `tuitrain check`
exits 0, 1 or 2, and on 2 says each mistake on one line of bounded length naming the file
(or `--set` and the key), never with a traceback (issue 14).

Cases are generated here from a seeded random generator (hypothesis is not a dependency):
mutations of a valid config (deleted keys, wrong types, huge / NaN / negative numbers,
unicode, nesting, unknown keys), damaged TOML text (garbage bytes, truncation, deep
nesting), and `--set` overrides of every option with odd values. They run in-process
through tuitrain.cli.main.main, plus a handful as real processes.
"""

from __future__ import annotations

import copy
import datetime
import math
import random
import re
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from PIL import Image

from tuitrain.cli.main import main
from tuitrain.config.options import iter_options

SEED = 20141
MAX_LINE = 300

BASE: dict[str, Any] = {
    "description": "fuzz base",
    "model": {"family": "sd15", "base": "model"},
    "data": {
        "resolution": 64,
        "bucket_step": 64,
        "max_aspect_ratio": 2.0,
        "concepts": [
            {"path": "images", "caption": "per-image", "repeats": 2},
            {"path": "images", "name": "again", "caption": "instance", "instance_prompt": "photo of sks"},
        ],
    },
    "training": {"epochs": 2, "max_steps": 10, "learning_rate": 1e-4, "seed": 7, "max_grad_norm": 1.0},
    "optimizer": {"name": "adamw", "beta1": 0.9},
    "lora": {"rank": 4, "alpha": 4.0},
    "sampling": {"every_steps": 5, "prompts": [{"prompt": "a red square", "seed": 3, "width": 64, "height": 64}]},
    "saving": {"name": "fuzz", "keep_last": 2, "backup_every_minutes": 30.0},
}

WRONG_TYPES: list[Any] = [
    "", "x", "12", "true", 0, -1, 1, 3.5, True, False, [], {}, [1, "a"], {"a": 1}, [{"b": 2}],
    datetime.datetime(2024, 1, 2, 3, 4, 5), datetime.date(1979, 5, 27), datetime.time(7, 32),
]
NUMBERS: list[Any] = [
    10**30, -10**30, 2**63 - 1, 2**63, 2**64, -(2**63), 10**4000, 1e308, -1e308, 5e-324, math.inf, -math.inf,
    math.nan, 0, -0.0, -1, -1e-9, 1e-300,
]
TEXTS: list[str] = [
    "fäöü", "🦊" * 5, "\u202eevil", "a\nb", "line\r\nbreak", "\x00", "tab\there", "\u2028", "\ufeffbom",
    "\x1b[31mred", "x" * 100_000, "é" * 3000, " ", "../../etc", "~nosuchuser/x", "a/" * 200, "C:\\x\\y",
    "\U0001f600" * 100,
]
ODD_KEYS: list[str] = ["wat", "a\nb", "é", "x" * 5000, "", " ", "lora.rank", "🦊", "\x1b[2J"]


def _odd_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.random()
    if kind < 0.3:
        return rng.choice(WRONG_TYPES)
    if kind < 0.6:
        return rng.choice(NUMBERS)
    if kind < 0.85:
        return rng.choice(TEXTS)
    return _nested(rng, rng.choice([3, 20, 31, 33, 60]))


def _nested(rng: random.Random, depth: int) -> Any:
    value: Any = rng.choice([1, "x", 2.5])
    for _ in range(depth):
        value = [value] if rng.random() < 0.5 else {"k": value}
    return value


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in the data a mutation can hit (tables, list items and leaves)."""
    out: list[tuple[Any, ...]] = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        out.append((*prefix, key))
        out.extend(_paths(value, (*prefix, key)))
    return out


def _parent(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path[:-1]:
        data = data[part]
    return data


def mutate(rng: random.Random, data: dict[str, Any]) -> dict[str, Any]:
    """1-3 random changes to a copy of `data`."""
    data = copy.deepcopy(data)
    for _ in range(rng.randint(1, 3)):
        paths = _paths(data)
        if not paths:
            break
        path = rng.choice(paths)
        parent, last = _parent(data, path), path[-1]
        action = rng.random()
        if action < 0.2:
            del parent[last]
        elif action < 0.8:
            parent[last] = _odd_value(rng)
        elif action < 0.9 and isinstance(parent, dict):
            parent[rng.choice(ODD_KEYS)] = _odd_value(rng)
        else:  # a list of tables becomes a list of something else, or a table a list
            parent[last] = [rng.choice(TEXTS[:3]), rng.choice(NUMBERS[:3])] if rng.random() < 0.5 else [parent[last]]
    return data


def damage_text(rng: random.Random, raw: bytes) -> bytes:
    """The TOML text with garbage bytes written in, cut short, or made deeply nested."""
    action = rng.random()
    if action < 0.35:
        data = bytearray(raw)
        for _ in range(rng.randint(1, 8)):
            at = rng.randrange(len(data) + 1)
            garbage = bytes(rng.randrange(256) for _ in range(rng.randint(1, 6)))
            data[at:at + (len(garbage) if rng.random() < 0.5 else 0)] = garbage
        return bytes(data)
    if action < 0.6:
        return raw[: rng.randrange(len(raw) + 1)]
    depth = rng.choice([33, 300, 1500, 20_000])
    dotted = min(depth, 2000)  # tomllib takes time quadratic in a key's parts: 20,000 would be 5 s a case
    deep = rng.choice([
        "x = " + "[" * depth,
        "x = " + "[" * depth + "]" * depth,
        "x = " + "{a = " * depth + "1" + "}" * depth,
        "x" + ".y" * dotted + " = 1",
        "[" + ".".join(["t"] * dotted) + "]\nv = 1",
        "[[" + ".".join(["t"] * dotted) + "]]",
    ])
    lines = raw.decode().splitlines()
    lines.insert(rng.randrange(len(lines) + 1), deep)
    return "\n".join(lines).encode()


def override_keys() -> dict[str, str]:
    """Every option's key, with a value it takes (its default, or a prompt for a list of them)."""
    keys = {}
    for option in iter_options():
        default = option.default
        if isinstance(default, bool):
            keys[option.path] = str(default).lower()
        elif isinstance(default, (int, float, str)):
            keys[option.path] = str(default)
        else:
            keys[option.path] = '[{prompt = "a fox"}]' if option.path == "sampling.prompts" else "unset"
    return keys


OVERRIDE_VALUES: list[str] = [
    "1", "-1", "0", "1e999", "-1e999", "nan", "inf", "1" + "0" * 30, "9" * 5000, "2.5", "true", "maybe", "",
    "unset", "none", "[" * 20_000, "[" * 40, "{a = 1}", '[{prompt = "x", seed = 1}]', '["a", "b"]', '"quoted"',
    "a\nb", "🦊", "x" * 100_000, "\x00", "\x1b[2J", "1979-05-27", "{" * 500, "=", "[1, [2, [3]]]",
]
ODD_OVERRIDE_KEYS: list[str] = [
    "sampling.prompts[0].seed", "sampling.prompts[0].x", "sampling.prompts[7].seed", "sampling.prompts[99999999999].seed",
    "data.concepts[0].path.x", "data.concepts[1].repeats", "training.seed.x", "training[0]", "lora..rank", ".lora",
    "lora.rank ", " lora.rank", "a\nb", "é.x", "x" * 5000, "", "data.concepts[" + "9" * 5000 + "].path",
    "sampling.prompts[0]", "model", "training",
]


def random_override(rng: random.Random, keys: dict[str, str]) -> str:
    if rng.random() < 0.05:
        return rng.choice(["lora.rank", "", "=", "==", "\n", "🦊"])  # no '=' or no key
    key = rng.choice(list(keys)) if rng.random() < 0.7 else rng.choice(ODD_OVERRIDE_KEYS)
    value = keys.get(key, "1") if rng.random() < 0.3 else rng.choice(OVERRIDE_VALUES)
    key = re.sub(r"\[\]", lambda _: f"[{rng.choice([0, 0, 1, 2, 5])}]", key)
    return f"{key}={value}"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A config folder with the base model and the images BASE names (so BASE can train)."""
    images = tmp_path / "images"
    images.mkdir()
    for index in range(2):
        Image.new("RGB", (64, 64), (200, 40 * index, 30)).save(images / f"img{index}.png")
        (images / f"img{index}.txt").write_text("a red square, sks", encoding="utf-8")
    model = tmp_path / "model"
    model.mkdir()
    (model / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline"}')
    return tmp_path


def check_outcome(capsys: pytest.CaptureFixture[str], argv: list[str], config: Path, case: str) -> int:
    """Run `tuitrain check` in-process and assert the property; returns the exit code."""
    try:
        code = main(argv)
    except BaseException as exc:  # noqa: BLE001 - any escape is the failure being looked for
        pytest.fail(f"{case}: main raised {type(exc).__name__}: {str(exc)[:300]}")
    out, err = capsys.readouterr()
    assert_outcome(code, out, err, config, case)
    return code


def assert_outcome(code: int, out: str, err: str, config: Path, case: str) -> None:
    assert code in (0, 1, 2), f"{case}: exit code {code}\n{err[-2000:]}"
    assert "Traceback" not in out + err, f"{case}: traceback\n{err[-3000:]}"
    if code == 2:
        lines = err.splitlines()
        assert lines, f"{case}: exit 2 without a message"
        where = re.compile(rf"^({re.escape(str(config))}(:\d+(:\d+)?)?|--set): \S")
        for line in lines:
            assert where.match(line), f"{case}: line names neither the file nor --set: {line[:400]!r}"
            assert len(line) <= MAX_LINE, f"{case}: line of {len(line)} characters: {line[:400]!r}"


def test_base_config_trains(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The starting point of every mutation is a config check accepts (so mutations test the schema)."""
    config = folder / "c.toml"
    config.write_text(tomli_w.dumps(BASE), encoding="utf-8")
    assert check_outcome(capsys, ["check", str(config)], config, "base") == 0


def test_mutated_configs(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """600 mutated configs: each exits 0, 1 or 2 with one bounded line per mistake."""
    rng = random.Random(SEED)
    config = folder / "c.toml"
    codes: dict[int, int] = {}
    for case in range(600):
        config.write_text(tomli_w.dumps(mutate(rng, BASE)), encoding="utf-8")
        code = check_outcome(capsys, ["check", str(config)], config, f"mutation {case}")
        codes[code] = codes.get(code, 0) + 1
    assert codes.get(2, 0) > 300 and codes.get(0, 0) > 10 and codes.get(1, 0) > 0, codes  # every verdict is reached  # both verdicts are reached, not just one


def test_damaged_toml_text(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """300 texts with garbage bytes, cut short or nested up to 20,000 deep: exit 0, 1 or 2, never a traceback."""
    rng = random.Random(SEED + 1)
    config = folder / "c.toml"
    raw = tomli_w.dumps(BASE).encode()
    for case in range(300):
        config.write_bytes(damage_text(rng, raw))
        check_outcome(capsys, ["check", str(config)], config, f"damaged text {case}")


def test_overrides(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """600 runs of check with 1-3 `--set` overrides of every option (and odd keys) with odd or
    plain values, over the base config and over one whose sample prompts are strings."""
    rng = random.Random(SEED + 2)
    keys = override_keys()
    plain = folder / "c.toml"
    plain.write_text(tomli_w.dumps(BASE), encoding="utf-8")
    strings = folder / "strings.toml"
    strings.write_text(tomli_w.dumps({**BASE, "sampling": {"prompts": ["a cat", "a dog"]}}), encoding="utf-8")
    codes: dict[int, int] = {}
    for case in range(600):
        config = plain if case % 3 else strings
        overrides = [random_override(rng, keys) for _ in range(rng.randint(1, 3))]
        argv = ["check", str(config), *(f"--set={item}" for item in overrides)]
        code = check_outcome(capsys, argv, config, f"overrides {case} {[o[:80] for o in overrides]}")
        codes[code] = codes.get(code, 0) + 1
    assert codes.get(2, 0) > 300 and codes.get(0, 0) > 10, codes  # both verdicts are reached


REAL_PROCESS_CASES = {
    "deep": ("x = " + "[" * 20_000, []),
    "seed": ("training.seed = 1000000000000000000000000000000", []),
    "strings": ('[sampling]\nprompts = ["a cat"]', ["--set=sampling.prompts[0].seed=1"]),
    "newline": ("", ["--set=model.family=sd\nxl", "--set=training.device=" + "g" * 100_000]),
    "garbage": ("\udcff\udcfe[[", []),
}


@pytest.mark.parametrize("name", list(REAL_PROCESS_CASES))
def test_real_processes(folder: Path, cli, name: str) -> None:  # type: ignore[no-untyped-def]
    """A few of the same cases as a user meets them: a real `tuitrain check` process."""
    text, overrides = REAL_PROCESS_CASES[name]
    config = folder / f"{name}.toml"
    config.write_bytes(text.encode("utf-8", "surrogateescape"))
    done = cli("check", str(config), *overrides)
    assert_outcome(done.returncode, done.stdout, done.stderr, config, name)
    assert done.returncode == 2


def test_undecodable_argument_bytes(folder: Path) -> None:
    """`--set` bytes that are not UTF-8 (a Latin-1 terminal) reach Python as surrogates: still one line."""
    import os
    import subprocess
    import sys

    config = folder / "c.toml"
    config.write_text(tomli_w.dumps(BASE), encoding="utf-8")
    for item in (b"--set=model.base=caf\xe9", b"--set=saving.name=\xff\xfe", b"--set=lora.r\xe4nk=1"):
        done = subprocess.run([sys.executable, "-m", "tuitrain", "check", str(config).encode(), item],
                              capture_output=True, env={**os.environ}, timeout=120)
        out, err = done.stdout.decode("utf-8", "replace"), done.stderr.decode("utf-8", "replace")
        assert_outcome(done.returncode, out, err, config, repr(item))
