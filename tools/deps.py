#!/usr/bin/env python3
"""The tested set of dependency versions (constraints.txt), and a way to try the newest on purpose.

tuitrain is an application: a user's working install must not change when a library
releases. pyproject.toml keeps compatible ranges (an upper bound only where a break is
known); constraints.txt pins every package the README's commands and CI install to the
exact versions the test suite passed with. Two commands keep the two honest:

    python tools/deps.py lock     re-resolve the newest versions pyproject allows and write
                                  constraints.txt (then run the suite with it before committing)
    python tools/deps.py newest   install the newest versions pyproject allows into a scratch
                                  venv, show what differs from constraints.txt, and run the suite
                                  there: the drift users of `pip install tuitrain` meet first.
        --ignore-upper-bounds     ... with every `<` bound lifted (exact pins such as
                                  textual== stay), to see whether a bound can go
        -- PYTEST ARGS            what to run (default: the whole suite, quietly)

Resolution is pip's own (`pip install --dry-run --report`), once per Python in
LOCK_PYTHONS, merged with environment markers where the versions differ (textual-image
0.12 on 3.11, 0.14+ on 3.12). torch is left out of the lock, as are the packages only
torch needs: install the torch build that fits the machine first (README), and the lock
must not swap it. Standard library only (plus `packaging`, which pip resolves anyway).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "constraints.txt"
TORCH = "torch==2.13.0"  # the CPU build the README installs first; the lock is resolved beside it
LOCK_PYTHONS = ("3.11", "3.12")  # 3.11: the CI interpreter; 3.12: textual-image's newer line
EXTRAS = "test"
NOT_LOCKED = {"torch", "tuitrain", "pip"}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _python(version: str) -> str | None:
    """An interpreter for `version` that runs: pyenv's, else pythonX.Y on PATH (pyenv shims may not run)."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = [str(p / "bin" / "python") for p in sorted(root.glob(f"{version}.*"), reverse=True)]
    candidates.append(shutil.which(f"python{version}") or "")
    for exe in candidates:
        if exe and subprocess.run([exe, "-c", "pass"], capture_output=True).returncode == 0:
            return exe
    return None


def _requirements(ignore_upper_bounds: bool) -> list[str]:
    """What to resolve: torch, the project with its test extra (or its relaxed requirement list)."""
    if not ignore_upper_bounds:
        return [TORCH, f"{REPO}[{EXTRAS}]"]
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    deps = list(project["dependencies"]) + list(project["optional-dependencies"][EXTRAS])
    return [TORCH, *(_lift_upper_bounds(d) for d in deps if not d.startswith("torch"))]


def _lift_upper_bounds(requirement: str) -> str:
    """'x>=1,<2; marker' -> 'x>=1; marker'. Exact pins (==) stay: they are there for the snapshots."""
    from packaging.requirements import Requirement

    req = Requirement(requirement)
    kept = ",".join(str(s) for s in req.specifier if s.operator not in ("<", "<="))
    extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
    marker = f"; {req.marker}" if req.marker else ""
    return f"{req.name}{extras}{kept}{marker}"


def resolve(python: str, requirements: list[str]) -> dict[str, str]:
    """{canonical name: version} of what pip would install for `requirements` on `python`, minus torch's own."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        subprocess.run(
            [python, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed",
             "--disable-pip-version-check", "--report", str(report), *requirements],
            check=True, cwd=REPO,
        )
        items = json.loads(report.read_text())["install"]
    from packaging.requirements import Requirement

    graph: dict[str, list[str]] = {}
    versions: dict[str, str] = {}
    requested: list[str] = []
    for item in items:
        meta = item["metadata"]
        name = _canonical(meta["name"])
        versions[name] = meta["version"]
        deps = []
        for line in meta.get("requires_dist") or []:
            req = Requirement(line)
            # Extras of dependencies are not installed unless asked for; skip those edges.
            if req.marker is not None and "extra" in str(req.marker):
                if name == "tuitrain" and req.marker.evaluate({"extra": EXTRAS}):
                    deps.append(_canonical(req.name))
                continue
            deps.append(_canonical(req.name))
        graph[name] = deps
        if item.get("requested"):
            requested.append(name)
    # Everything reachable from the project without passing through torch.
    seen: set[str] = set()
    todo = [d for d in graph.get("tuitrain", []) if d != "torch"] or [r for r in requested if r != "torch"]
    while todo:
        name = todo.pop()
        if name in seen or name == "torch" or name not in versions:
            continue
        seen.add(name)
        todo.extend(graph.get(name, []))
    return {name: versions[name] for name in sorted(seen - NOT_LOCKED)}


def _marker(pythons: list[str]) -> str:
    return " or ".join(f'python_version == "{p}"' for p in pythons)


def merge(per_python: dict[str, dict[str, str]]) -> list[str]:
    """One constraints line per package and version, with a python_version marker where they differ."""
    lines = []
    names = sorted({n for pins in per_python.values() for n in pins})
    for name in names:
        by_version: dict[str, list[str]] = {}
        for py, pins in per_python.items():
            if name in pins:
                by_version.setdefault(pins[name], []).append(py)
        if len(by_version) == 1 and len(next(iter(by_version.values()))) == len(per_python):
            lines.append(f"{name}=={next(iter(by_version))}")
            continue
        for version, pys in sorted(by_version.items()):
            lines.append(f"{name}=={version}; {_marker(pys)}")
    return lines


def cmd_lock(args: argparse.Namespace) -> int:
    per_python: dict[str, dict[str, str]] = {}
    for version in LOCK_PYTHONS:
        python = _python(version)
        if python is None:
            print(f"deps: no Python {version} here; the lock would not cover it", file=sys.stderr)
            return 1
        print(f"resolving for Python {version} ({python}) ...", flush=True)
        per_python[version] = resolve(python, _requirements(False))
    header = [
        "# The tested set: exact versions the test suite passed with (README commands and .ci/run use it:",
        "#   pip install -c constraints.txt ...). Written by `python tools/deps.py lock` on "
        + time.strftime("%Y-%m-%d") + ";",
        "# resolved beside " + TORCH + " for Python " + ", ".join(LOCK_PYTHONS) + ". torch itself and the packages",
        "# only torch needs are not pinned: install the torch build for your machine first (README).",
        "# Ranges live in pyproject.toml; `python tools/deps.py newest` tries what a new release would change.",
    ]
    LOCK.write_text("\n".join(header + merge(per_python)) + "\n")
    print(f"wrote {LOCK.relative_to(REPO)}: {sum(1 for _ in merge(per_python))} pins")
    return 0


def _read_lock() -> dict[str, str]:
    pins: dict[str, str] = {}
    if not LOCK.exists():
        return pins
    for line in LOCK.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, _, rest = line.partition("==")
            pins.setdefault(_canonical(name), rest.split(";", 1)[0].strip())
    return pins


def cmd_newest(args: argparse.Namespace) -> int:
    python = _python(args.python) or sys.executable
    requirements = _requirements(args.ignore_upper_bounds)
    venv = Path(args.venv or tempfile.mkdtemp(prefix="tuitrain-newest-"))
    print(f"scratch venv: {venv}", flush=True)
    subprocess.run([python, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, TORCH], check=True)
    if args.ignore_upper_bounds:
        subprocess.run([*pip, "--upgrade", *requirements[1:]], check=True)
        subprocess.run([*pip, "--no-deps", "-e", str(REPO)], check=True)
    else:
        subprocess.run([*pip, "--upgrade", "--upgrade-strategy", "eager", "-e", f"{REPO}[{EXTRAS}]"], check=True)
    frozen = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format", "json"],
                            check=True, capture_output=True, text=True).stdout
    installed = {_canonical(p["name"]): p["version"] for p in json.loads(frozen)}
    locked = _read_lock()
    changed = [(n, locked[n], installed[n]) for n in sorted(locked) if n in installed and installed[n] != locked[n]]
    print("differs from constraints.txt:" if changed else "same versions as constraints.txt")
    for name, old, new in changed:
        print(f"  {name}: {old} -> {new}")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    started = time.monotonic()
    # Newer than the lock on purpose: the check that the locked versions are installed stands aside.
    deselect = ["--deselect", "tests/test_dependencies.py::test_the_suite_runs_on_the_locked_versions"]
    result = subprocess.run([str(venv / "bin" / "python"), "-m", "pytest", *deselect, *(args.pytest or ["-q"])],
                            cwd=REPO, env=env)
    print(f"suite with the newest versions: exit {result.returncode} in {time.monotonic() - started:.0f} s "
          f"({'passed' if result.returncode == 0 else 'FAILED'})")
    if not args.keep and not args.venv:
        shutil.rmtree(venv, ignore_errors=True)
    return result.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("lock", help="write constraints.txt from the newest versions pyproject allows")
    p = sub.add_parser("newest", help="run the suite in a scratch venv with the newest versions")
    p.add_argument("--ignore-upper-bounds", action="store_true", help="lift pyproject's `<` bounds too")
    p.add_argument("--python", default=f"{sys.version_info[0]}.{sys.version_info[1]}", help="Python X.Y to use")
    p.add_argument("--venv", help="where to build the venv (default: a temporary folder, removed after)")
    p.add_argument("--keep", action="store_true", help="keep the temporary venv")
    p.add_argument("pytest", nargs=argparse.REMAINDER, help="-- then the pytest arguments")
    args = parser.parse_args(argv)
    if getattr(args, "pytest", None) and args.pytest[0] == "--":
        args.pytest = args.pytest[1:]
    return {"lock": cmd_lock, "newest": cmd_newest}[args.command](args)


if __name__ == "__main__":
    raise SystemExit(main())
