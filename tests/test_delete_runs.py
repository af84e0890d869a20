"""`tuitrain delete`: a run moves to the workspace's trash by rename and comes back exactly; a live run is
refused; only --empty-trash deletes, after asking. Through the real CLI, as a user types it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tuitrain.runs import RunDir
from tuitrain.runs.events import append_event, make_event
from tuitrain.runs.pidfile import write_pidfile


def tree(folder: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every file under folder with its bytes, mtime and inode (a rename keeps all three)."""
    return {p.relative_to(folder).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_ino)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def tuitrain(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tuitrain", *args], input=stdin, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture
def fae(workspace: Path) -> RunDir:
    """A run with a little history and a saved LoRA, like one a user would want back."""
    assert tuitrain("new", "fae", "--preset", "sd15-lora").returncode == 0
    run = RunDir(workspace / "fae")
    append_event(run.events, make_event("started", total_steps=10))
    append_event(run.events, make_event("finished", status="completed", reason="", step=10))
    (run.output / "fae.safetensors").write_bytes(b"weights")
    return run


@pytest.fixture
def live_process() -> Iterator[int]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def test_delete_moves_the_run_to_the_trash_and_undo_brings_it_back_exactly(fae: RunDir, workspace: Path) -> None:
    before, root_inode = tree(fae.root), fae.root.stat().st_ino

    deleted = tuitrain("delete", "fae")

    assert deleted.returncode == 0, deleted.stderr
    assert "Moved run fae to the trash" in deleted.stdout and "tuitrain delete --undo" in deleted.stdout
    assert not fae.root.exists()
    [trashed] = (workspace / ".tuitrain-trash").iterdir()
    assert trashed.name.startswith("fae-") and tree(trashed) == before  # a rename: same inodes, nothing copied
    listing = tuitrain("runs")
    assert "fae" not in listing.stdout.splitlines()[0] and "1 deleted run(s) in the trash" in listing.stdout
    trash_list = tuitrain("delete", "--list-trash")
    assert "1 deleted run(s)" in trash_list.stdout and "  fae  (" in trash_list.stdout

    undone = tuitrain("delete", "--undo")

    assert undone.returncode == 0 and f"Restored run fae ({fae.root})" in undone.stdout
    assert tree(fae.root) == before and fae.root.stat().st_ino == root_inode
    assert sorted(p.name for p in workspace.iterdir()) == ["fae"]  # the empty trash is gone
    assert "fae" in tuitrain("runs").stdout
    nothing = tuitrain("delete", "--undo")
    assert nothing.returncode == 1 and "Nothing to undo" in nothing.stderr


def test_a_running_or_paused_run_is_refused(fae: RunDir, workspace: Path, live_process: int) -> None:
    assert tuitrain("new", "other", "--preset", "sd15-lora").returncode == 0
    fae.events.unlink()
    append_event(fae.events, make_event("started", total_steps=10))
    write_pidfile(fae.pidfile, live_process)
    before = tree(fae.root)

    refused = tuitrain("delete", "other", "fae")  # all or nothing: other stays too

    assert refused.returncode == 1
    assert refused.stderr.splitlines() == [
        "cannot delete: run fae is running: stop it first (tuitrain attach fae, then x)", "Nothing deleted."]
    assert tree(fae.root) == before and (workspace / "other").is_dir()

    append_event(fae.events, make_event("paused", step=3))
    assert "run fae is paused" in tuitrain("delete", "fae").stderr and fae.root.is_dir()


def test_a_finished_run_whose_trainer_still_lives_is_refused(fae: RunDir, live_process: int) -> None:
    # The trainer wrote its PID file when it started; the log says finished; the process is still exiting.
    # (A PID file written after the "finished" is a new attempt loading: runs/state.py calls that running.)
    write_pidfile(fae.pidfile, live_process)
    append_event(fae.events, make_event("finished", status="completed", reason="", step=10))

    refused = tuitrain("delete", "fae")

    assert refused.returncode == 1 and f"(pid {live_process}) is still running" in refused.stderr
    assert fae.root.is_dir()


def test_undo_by_name_and_a_name_taken_meanwhile(fae: RunDir, workspace: Path) -> None:
    assert tuitrain("new", "owl", "--preset", "sd15-lora").returncode == 0
    assert tuitrain("delete", "fae").returncode == 0
    assert tuitrain("delete", "owl").returncode == 0
    assert tuitrain("new", "fae", "--preset", "sdxl-lora").returncode == 0  # a new run took the name

    wrong = tuitrain("delete", "--undo", "fea")
    assert wrong.returncode == 2 and wrong.stderr.strip() == (
        f"tuitrain: fea: no deleted run of that name in {workspace}; deleted runs: fae, owl")
    undone = tuitrain("delete", "--undo", "fae")  # not the newest (owl): the one named

    assert undone.returncode == 0
    assert "Restored run fae as fae-restored: a run named fae exists" in undone.stdout
    assert (workspace / "fae-restored" / "output" / "fae.safetensors").read_bytes() == b"weights"
    assert "sdxl-lora" in (workspace / "fae" / "config.toml").read_text()  # the newcomer is untouched
    assert [line.split()[0] for line in tuitrain("runs").stdout.splitlines()[:2]] == ["fae", "fae-restored"]


def test_empty_trash_asks_first_and_only_then_deletes(fae: RunDir, workspace: Path) -> None:
    assert tuitrain("delete", "fae").returncode == 0

    declined = tuitrain("delete", "--empty-trash", stdin="n\n")
    assert declined.returncode == 1 and "[y/N]" in declined.stdout and "Nothing deleted" in declined.stdout
    assert "Delete 1 deleted run(s) (" in declined.stdout
    assert tuitrain("delete", "--empty-trash").returncode == 1  # no answer is no
    assert tuitrain("delete", "--list-trash").stdout.count("  fae  (") == 1

    accepted = tuitrain("delete", "--empty-trash", stdin="y\n")
    assert accepted.returncode == 0 and "Deleted 1 run(s) from the trash" in accepted.stdout
    assert not (workspace / ".tuitrain-trash").exists()
    assert "already empty" in tuitrain("delete", "--empty-trash", "--yes").stdout


@pytest.mark.parametrize("args, says", [
    ((), "name the run(s) to delete"),
    (("nope",), "nope: no such run in the workspace"),
    (("fea",), "did you mean fae?"),
    (("/tmp",), "not a run of the workspace"),
    (("fae", "--yes"), "--yes only goes with --empty-trash"),
    (("--undo", "--empty-trash"), "use one of --list-trash, --undo and --empty-trash at a time"),
    (("--list-trash", "fae"), "--list-trash takes no RUN"),
])
def test_mistakes_get_one_line_and_delete_nothing(fae: RunDir, args: tuple[str, ...], says: str) -> None:
    result = tuitrain("delete", *args)
    assert result.returncode == 2 and says in result.stderr and len(result.stderr.splitlines()) == 1
    assert fae.root.is_dir()


def test_a_run_named_by_its_folder(fae: RunDir, workspace: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "tuitrain", "delete", "./fae"], cwd=workspace,
                            capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert result.returncode == 0 and not fae.root.exists()


def test_naming_a_deleted_run_says_how_to_get_it_back(fae: RunDir) -> None:
    assert tuitrain("delete", "fae").returncode == 0

    result = tuitrain("check", "fae")

    assert result.returncode == 2
    assert result.stderr.strip().endswith("fae: no such config file, run directory, or run in workspace "
                                          f"{fae.root.parent}; it was deleted: tuitrain delete --undo fae brings it back")
