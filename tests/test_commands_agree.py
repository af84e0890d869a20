"""Commands that must say the same thing about the same run (issue 23), through the real entry point."""

from __future__ import annotations

from pathlib import Path

from tuitrain.config import load_config


def test_a_new_runs_description_stays_true_after_its_rank_changes(cli, workspace: Path) -> None:
    out = cli("new", "fae", "--preset", "sd15-lora", "--set", "lora.rank=8")
    assert out.returncode == 0, out.stderr
    text = (workspace / "fae" / "config.toml").read_text()
    config = load_config(workspace / "fae" / "config.toml")
    assert config.lora.rank == 8
    assert "rank 16" not in text  # the preset's own line described the preset, not this config
    assert config.description == "Made from the preset sd15-lora."
    assert "rank 16" in cli("presets").stdout  # the preset itself is still described
