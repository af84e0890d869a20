"""A non-editable install carries the presets and themes (they live outside the package in the repo)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_wheel_ships_presets_and_themes_and_runs_from_them(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(REPO)],
        check=True, capture_output=True, timeout=300,
    )
    (wheel,) = wheels.glob("tuitrain-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for preset in (REPO / "presets").glob("*.toml"):
        assert f"tuitrain/_data/presets/{preset.name}" in names
    for theme in (REPO / "themes").glob("*.toml"):
        assert f"tuitrain/_data/themes/{theme.name}" in names

    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True, capture_output=True, timeout=300,
    )
    env = {**os.environ, "PYTHONPATH": str(target), "TUITRAIN_WORKSPACE": str(tmp_path / "ws")}
    where = subprocess.run(
        [sys.executable, "-c", "import tuitrain, tuitrain.resources as r; print(tuitrain.__file__); print(r.data_dir('presets'))"],
        capture_output=True, text=True, cwd=tmp_path, env=env, check=True,
    ).stdout.split()
    assert all(p.startswith(str(target)) for p in where), where  # the installed copy, not the checkout

    script = target / "bin" / "tuitrain"
    out = subprocess.run([str(script), "presets"], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    assert "sdxl-lora-prodigy" in out.stdout
    made = subprocess.run([str(script), "new", "w1", "--preset", "sd2-lora"], capture_output=True, text=True,
                          cwd=tmp_path, env=env)
    assert made.returncode == 0, made.stderr
    assert 'resolution = 768' in (tmp_path / "ws" / "w1" / "config.toml").read_text()
