"""Run folders are owner-only: made 0700, older open ones tightened when tuitrain touches them, and the
trainer writes its files with umask 077 (a shared GPU box must not show one user's data to another)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tuitrain.runs import RunDir
from tuitrain.runs.permissions import open_run_log


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_run_and_a_new_workspace_are_owner_only(cli, workspace: Path, usual_umask: None) -> None:  # type: ignore[no-untyped-def]
    assert not workspace.exists()
    assert cli("new", "fae", "--preset", "sd15-lora").returncode == 0
    run = RunDir(workspace / "fae")
    assert mode(workspace) == 0o700  # tuitrain made it
    for folder in (run.root, run.samples, run.checkpoints, run.output, run.cache):
        assert mode(folder) == 0o700, folder


def test_an_open_run_of_an_older_tuitrain_is_tightened(cli, workspace: Path, usual_umask: None) -> None:  # type: ignore[no-untyped-def]
    workspace.mkdir(mode=0o755)  # the user's own workspace keeps its mode
    os.chmod(workspace, 0o755)
    assert cli("new", "fae", "--preset", "sd15-lora").returncode == 0
    run = RunDir(workspace / "fae")
    for command in (("runs",), ("check", "fae"), ("check", str(run.root)), ("check", str(run.config))):
        os.chmod(run.root, 0o755)
        cli(*command)
        assert mode(run.root) == 0o700, command
    assert mode(workspace) == 0o755


def test_the_run_log_helper_opens_owner_only(tmp_path: Path, usual_umask: None) -> None:
    run = RunDir(tmp_path / "fae")
    run.root.mkdir()
    run.log.write_bytes(b"old\n")
    os.chmod(run.log, 0o644)  # left by an older `train --detach`
    with open_run_log(run) as log:
        log.write(b"new\n")
    assert run.log.read_bytes() == b"old\nnew\n" and mode(run.log) == 0o600
