"""`tuitrain pick` with saves that are a file and a diffusers folder (saving.diffusers_format): both are copied,
the final's pair is kept under its step name, and picking twice never renames the final again."""

from __future__ import annotations

import json
from pathlib import Path

from tuitrain.runs import RunDir


def _run(workspace: Path) -> RunDir:
    run = RunDir(workspace / "r")
    run.create_folders()
    run.config.write_text('[model]\nbase = "nomodel"\n')
    run.output.mkdir(exist_ok=True)
    lines = []
    for step, stem, final in ((2, "r-step000002", False), (4, "r", True)):
        (run.output / f"{stem}.safetensors").write_bytes(f"file {step}".encode())
        folder = run.output / f"{stem}-diffusers"
        folder.mkdir()
        (folder / "pytorch_lora_weights.safetensors").write_bytes(f"folder {step}".encode())
        lines.append({"v": 1, "type": "saved", "time": 1.0, "step": step, "epoch": 1, "final": final,
                      "path": str(run.output / f"{stem}.safetensors")})
    lines.append({"v": 1, "type": "finished", "time": 2.0, "status": "completed", "reason": "", "step": 4})
    run.events.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return run


def test_pick_copies_the_file_and_its_folder_and_keeps_the_finals(cli, workspace: Path) -> None:
    run = _run(workspace)
    out = cli("pick", "r", "2")
    assert out.returncode == 0, out.stderr
    o = run.output
    assert (o / "r.safetensors").read_bytes() == b"file 2"
    assert (o / "r-diffusers" / "pytorch_lora_weights.safetensors").read_bytes() == b"folder 2"
    assert (o / "r-step000004-final.safetensors").read_bytes() == b"file 4"
    assert (o / "r-step000004-final-diffusers" / "pytorch_lora_weights.safetensors").read_bytes() == b"folder 4"
    assert (o / "r-step000002-diffusers" / "pytorch_lora_weights.safetensors").read_bytes() == b"folder 2"

    again = cli("pick", "r", "best")  # no eval loss in this run: one line, nothing moves
    assert again.returncode == 2 and "no eval loss" in again.stderr
    last = cli("pick", "r", "4")
    assert last.returncode == 0, last.stderr
    assert (o / "r.safetensors").read_bytes() == b"file 4"
    assert (o / "r-diffusers" / "pytorch_lora_weights.safetensors").read_bytes() == b"folder 4"
    assert sorted(p.name for p in o.iterdir() if not p.name.startswith(".")) == [
        "r-diffusers", "r-step000002-diffusers", "r-step000002.safetensors", "r-step000004-final-diffusers",
        "r-step000004-final.safetensors", "r.pick.json", "r.safetensors"]
    assert "picked: step 4" in cli("runs").stdout


def test_picking_the_final_then_another_then_the_final_again_gives_the_finals_weights(cli, workspace: Path) -> None:
    """Found by review: a pick of the final (a note, no copy), then of step 2, renamed the final `-picked`
    (the note said 'step 4'), so list_saves lost it and the third pick left step 2's weights as 'step 4'."""
    run = _run(workspace)
    o = run.output
    for step, expected in (("4", b"file 4"), ("2", b"file 2"), ("4", b"file 4"), ("2", b"file 2"), ("4", b"file 4")):
        done = cli("pick", "r", step)
        assert done.returncode == 0, done.stderr
        assert (o / "r.safetensors").read_bytes() == expected, step
        assert json.loads((o / "r.pick.json").read_text())["step"] == int(step)
    assert (o / "r-step000004-final.safetensors").read_bytes() == b"file 4"
    assert (o / "r-step000002.safetensors").read_bytes() == b"file 2"
