"""A detached trainer's library warnings stay in trainer.log; the dashboard's log shows what the trainer says
(issue 23). The trainer here fails to load its base model: a real `train --detach`, a few seconds."""

from __future__ import annotations

from pathlib import Path

from tests.dashboard.conftest import wait_for, wait_until
from tests.dashboard.test_dashboard import dashboard
from tests.test_quiet_libraries import _fake_base, _images
from tuitrain.runs import RunDir, RunState, run_status
from tuitrain.runs.library_output import LIBRARY_TAG
from tuitrain.runs.pidfile import is_alive, read_pidfile
from tuitrain.tui.dashboard.app import AttachApp

OWN_LINE = "Traceback (most recent call last): a line of the trainer's own"


async def test_detached_trainer_keeps_library_lines_out_of_the_dashboard(cli, workspace: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    made = cli("new", "fail", "--preset", "sd15-lora", "--data", str(_images(tmp_path / "data")),
               "--base", str(_fake_base(tmp_path)))
    assert made.returncode == 0, made.stderr
    run = RunDir(workspace / "fail")
    assert cli("train", "fail", "--detach").returncode == 0
    proc = read_pidfile(run.pidfile)
    assert proc is not None
    wait_until(lambda: not is_alive(proc), "the trainer to fail and exit", timeout=120)
    assert run_status(run).state is RunState.FAILED
    log = run.log.read_text()
    assert all(line.startswith(LIBRARY_TAG) for line in log.splitlines()), log  # no untagged library line
    # What the trainer itself says comes as events (runs/library_output.py routes the rest), and a line
    # the libraries did not tag (a crash's traceback) is still shown:
    with open(run.log, "a") as fh:
        fh.write(OWN_LINE + "\n")

    app = AttachApp(run, "halfcell")
    async with app.run_test(size=(150, 44)) as pilot:
        dash = dashboard(app)

        def entries() -> list[tuple[str, str]]:
            with dash.model.lock:
                return [(entry.level, entry.text) for entry in dash.model.log]

        await wait_for(pilot, lambda: ("trainer", OWN_LINE) in entries(), "the trainer.log line")
        await wait_for(pilot, lambda: any("cannot load the diffusers folder" in text for _, text in entries()),
                       "the error event")
        shown = entries()
    assert [text for level, text in shown if level == "trainer"] == [OWN_LINE], shown
    for line in log.splitlines():  # whatever this machine's libraries said, none of it is in the dashboard's log
        assert not any(line.removeprefix(LIBRARY_TAG)[-40:] in text for _, text in shown), line
