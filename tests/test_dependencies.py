"""The tested set of versions is the one installed, and it fits pyproject's ranges.

constraints.txt pins what the README's commands and CI install; if the two drift apart,
CI would test one set and users would get another. `tools/deps.py newest` runs the suite
with newer versions on purpose and deselects the check that the locked versions are installed.
"""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked() -> dict[str, str]:
    """{package: version} from constraints.txt, for this interpreter's markers."""
    pins = {}
    for raw in (REPO / "constraints.txt").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        spec, _, marker = line.partition(";")
        if marker.strip() and not Marker(marker.strip()).evaluate():
            continue
        req = Requirement(spec)
        (pin,) = req.specifier
        assert pin.operator == "==", f"constraints.txt: {line!r} is not an exact pin"
        pins[_canonical(req.name)] = pin.version
    return pins


def project_requirements() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]]
    return [r for r in reqs if r.marker is None or r.marker.evaluate()]


def test_every_locked_version_is_inside_pyprojects_range() -> None:
    pins = locked()
    for req in project_requirements():
        name = _canonical(req.name)
        if name == "torch":
            assert name not in pins, "torch is the machine's choice (CUDA or CPU build): keep it out of the lock"
            continue
        assert name in pins, f"constraints.txt has no pin for {req.name} (run python tools/deps.py lock)"
        assert req.specifier.contains(pins[name], prereleases=True), \
            f"constraints.txt pins {req.name}=={pins[name]}, outside pyproject's {req.specifier}"


def test_the_suite_runs_on_the_locked_versions() -> None:
    wrong = {}
    for name, version in locked().items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # pinned for another extra or platform; not installed here
        if installed != version:
            wrong[name] = f"{installed} installed, {version} locked"
    assert not wrong, f"not the tested set (install with -c constraints.txt): {wrong}"


def test_readme_commands_install_the_locked_set() -> None:
    readme = (REPO / "README.md").read_text()
    for tag in ("quickstart:run", "quickstart:test"):
        block = readme.split(f"<!-- {tag} -->", 1)[1].split("```", 2)[1]
        assert "pip install -c constraints.txt" in block, f"README {tag}: {block.strip()}"
