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


def _kohya_tree(parent: Path) -> Path:
    """A kohya parent: 10_cat/ (3 images) and 5_coffee/ (2 images), nothing at the top."""
    from PIL import Image

    for folder, count, colour in (("10_cat", 3, "red"), ("5_coffee", 2, "blue")):
        (parent / folder).mkdir(parents=True)
        for i in range(count):
            Image.new("RGB", (512, 512), (i * 40, 0, 0) if colour == "red" else (0, 0, i * 40 + 100)).save(
                parent / folder / f"{i}.png")
            (parent / folder / f"{i}.txt").write_text(f"a {folder[folder.index('_') + 1:]}")
    return parent


def fake_base(folder: Path) -> Path:
    model = folder / "model"
    model.mkdir(exist_ok=True)
    (model / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline"}')
    return model


def test_new_splits_a_kohya_parent_as_check_data_does(cli, workspace: Path, tmp_path: Path) -> None:
    import json

    data = _kohya_tree(tmp_path / "kohya")
    by_folder = json.loads(cli("check", "--data", str(data), "--json").stdout)
    out = cli("new", "pets", "--preset", "sd15-lora", "--data", str(data), "--base", str(fake_base(tmp_path)))
    assert out.returncode == 0, out.stderr
    assert "2 concepts, one per sub-folder: cat x10, coffee x5" in out.stdout
    config = load_config(workspace / "pets" / "config.toml")
    assert [c.path for c in config.data.concepts] == [str(data / "10_cat"), str(data / "5_coffee")]
    check = cli("check", "pets", "--json")
    assert check.returncode == 0, check.stdout + check.stderr
    by_run = json.loads(check.stdout)["data"]
    assert [(c["name"], c["images"], c["repeats"]) for c in by_run["concepts"]] == [("cat", 3, 10), ("coffee", 2, 5)]
    assert by_run["steps"]["per_epoch"] == by_folder["steps"]["per_epoch"] == 40


def test_check_names_sub_folders_whose_images_no_concept_reads(cli, workspace: Path, tmp_path: Path) -> None:
    data = _kohya_tree(tmp_path / "kohya")
    (data / "5_coffee" / "more").mkdir()
    (data / "5_coffee" / "0.png").rename(data / "5_coffee" / "more" / "0.png")
    plain = f'data.concepts=[{{path="{data}"}}]'  # the parent as one plain concept, as older tuitrain wrote it
    assert cli("new", "flat", "--preset", "sd15-lora", "--base", str(fake_base(tmp_path)), "--set", plain).returncode == 0
    out = cli("check", "flat")
    assert out.returncode == 1 and "CANNOT TRAIN" in out.stdout
    said = " ".join(out.stdout.split())
    assert ("2 sub-folders of concept 'kohya' hold 5 images that are not used: "
            "set recursive = true or add them as concepts") in said
    assert "- kohya/10_cat/: 3 images" in said and "- kohya/5_coffee/: 2 images" in said
    assert "no usable image (0 files could not be read); 2 sub-folders" in said  # in the verdict too

    split = cli("new", "split", "--preset", "sd15-lora", "--data", str(data), "--base", str(fake_base(tmp_path)))
    assert split.returncode == 0, split.stderr
    out = cli("check", "split")  # the concepts are the sub-folders now; only 5_coffee/more/ is left out
    assert out.returncode == 0, out.stdout
    said = " ".join(out.stdout.split())
    assert "1 sub-folder of concept 'coffee' holds 1 image that is not used" in said
    assert "- 5_coffee/more/: 1 image" in said


def _kill(pid: int) -> None:
    import os
    import signal
    import time

    from tuitrain.runs.pidfile import TrainerProcess, is_alive, process_start_ticks

    proc = TrainerProcess(pid, process_start_ticks(pid), "")
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 10
    while is_alive(proc) and time.monotonic() < deadline:
        time.sleep(0.05)


def _state_line(cli, name: str) -> str:  # type: ignore[no-untyped-def]
    out = cli("runs")
    assert out.returncode == 0, out.stderr
    return next(line for line in out.stdout.splitlines() if line.startswith(name + " "))


def test_runs_says_starting_as_soon_as_train_detach_returns(cli, workspace: Path, tmp_path: Path,
                                                            usual_umask: None) -> None:
    """Not "never started" while the trainer imports torch, nor "finished"/"failed" (the last attempt's word)
    while a new attempt loads: the launcher writes the PID file before the trainer has imported anything."""
    import re

    from tuitrain.runs.events import append_event, make_event
    from tuitrain.runs.layout import RunDir

    data = _kohya_tree(tmp_path / "kohya")
    assert cli("new", "pets", "--preset", "sd15-lora", "--data", str(data), "--base", str(fake_base(tmp_path))).returncode == 0
    run = RunDir(workspace / "pets")
    for attempt in ("first", "again after a failed attempt"):
        started = cli("train", "pets", "--detach")
        assert started.returncode == 0, started.stderr
        pid = int(re.search(r"\(pid (\d+)\)", started.stdout).group(1))  # type: ignore[union-attr]
        try:
            line = _state_line(cli, "pets")
            assert run.pidfile.stat().st_mode & 0o777 == 0o600  # the launcher's PID file is owner-only too
        finally:
            _kill(pid)
        assert re.search(r"\brunning\b.*\(starting\)", line), f"{attempt}: {line}"
        if attempt == "first":  # killed before it said a word: it failed while starting, it did not "never start"
            assert "failed" in _state_line(cli, "pets") and "exited while starting" in _state_line(cli, "pets")
            append_event(run.events, make_event("started", total_steps=40, total_epochs=1))
            append_event(run.events, make_event("finished", status="failed", reason="out of memory", step=0))
            assert "failed" in _state_line(cli, "pets")
