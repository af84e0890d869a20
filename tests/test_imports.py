"""The TUI side and the light commands never import torch, diffusers or transformers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "diffusers", "transformers", "accelerate", "peft", "bitsandbytes")

_PROBE = """
import sys, runpy
sys.argv = ["tuitrain", *{args!r}]
try:
    from tuitrain.cli.main import main
    main(sys.argv[1:])
except SystemExit:
    pass
heavy = [m for m in {heavy!r} if m in sys.modules]
print("HEAVY:" + ",".join(heavy))
"""


@pytest.mark.parametrize(
    "args",
    [["--help"], ["presets"], ["runs"], ["new", "r1", "--preset", "sdxl-lora"], ["check", "r1"], ["check", "nope"]],
)
def test_light_commands_stay_light(args: list[str], tmp_path: Path) -> None:
    code = _PROBE.format(args=args, heavy=HEAVY)
    if args[0] == "check":
        subprocess.run([sys.executable, "-m", "tuitrain", "new", "r1"], check=True, capture_output=True)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "HEAVY:\n" in out.stdout, out.stdout + out.stderr


def test_tui_side_modules_stay_light() -> None:
    """Import every module outside tuitrain/trainer/ (found on disk: pkgutil.walk_packages would
    import the trainer's subpackages itself to recurse into them)."""
    root = Path(__file__).resolve().parents[1] / "tuitrain"
    modules = sorted(
        "tuitrain." + ".".join(p.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
        for p in root.rglob("*.py")
        if "trainer" not in p.relative_to(root).parts and p.name != "__main__.py"
    )
    assert "tuitrain.tui.app" in modules and "tuitrain.dataset.scan" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name.removesuffix('.__init__'))\n"
        f"print('HEAVY:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "HEAVY:\n" in out.stdout, out.stdout
