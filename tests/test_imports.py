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
    code = (
        "import pkgutil, importlib, sys, tuitrain\n"
        "skip = ('tuitrain.trainer', 'tuitrain.__main__')\n"
        "for m in pkgutil.walk_packages(tuitrain.__path__, 'tuitrain.'):\n"
        "    if not m.name.startswith(skip):\n"
        "        importlib.import_module(m.name)\n"
        f"print('HEAVY:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "HEAVY:\n" in out.stdout, out.stdout
