"""A finished run is never trained again from step 0: it continues from its final backup, or a new run starts.

Before, `tuitrain train RUN` (and the dashboard's t) on a finished run started at step 0,
overwrote output/<name>-step000010.safetensors and later saves, and wrote a second
history into the same event log.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.trainer.conftest import make_dataset, session_env
from tests.trainer.harness import copy_run, new_run, train, train_cli
from tests.trainer.harness import events as _events
from tests.trainer.resume import crash_mid_run
from tuitrain.runs import RunDir, RunState, run_status

# `tuitrain train RUN ...` as a process: what these tests are about is the command's answer to a finished run.
_train = train_cli


def _new_run(name: str, model: Path, data: Path, *sets: str, where: Path | None = None) -> RunDir:
    return new_run(name, model, data, "data.resolution=64", "training.batch_size=2", "lora.rank=4",
                   "training.lr_warmup_steps=0", "sampling.every_epochs=0", "saving.every_epochs=1",
                   "training.epochs=2", *sets, where=where)


def _fingerprint(folder: Path) -> dict[str, str]:
    """Every file under `folder` by relative path, with its content hash."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="session")
def finished_once(tiny_model, tmp_path_factory: pytest.TempPathFactory) -> RunDir:
    """Run "fin" trained to its end once per session, in-process: 8 images, 2 epochs of 4 steps, a save each."""
    root = tmp_path_factory.mktemp("finished")
    with session_env(root) as runs:
        run = _new_run("fin", tiny_model("sd15"), make_dataset(root / "data"), where=runs)
        assert train(run) == 0, _events(run)[-1]
    assert run_status(run).state is RunState.FINISHED
    return run


@pytest.fixture
def finished(finished_once: RunDir) -> RunDir:
    """This test's own copy of the finished run, in its workspace (the tests train it on, fork and refuse it)."""
    run = copy_run(finished_once)
    assert run_status(run).state is RunState.FINISHED
    return run


def test_training_a_finished_run_again_is_refused_with_the_two_ways_forward(finished: RunDir) -> None:
    outputs, log = _fingerprint(finished.output), finished.events.read_bytes()
    assert set(outputs) == {"fin-step000004.safetensors", "fin.safetensors"}

    out = _train(finished)
    assert out.returncode == 2
    assert "already finished (step 8/8)" in out.stderr
    assert "tuitrain train fin --more-epochs N" in out.stderr and "tuitrain train fin --as-new fin-2" in out.stderr
    assert "Traceback" not in out.stderr

    # What the TUI and --detach start: the trainer process itself refuses too, before writing anything.
    direct = subprocess.run([sys.executable, "-m", "tuitrain.trainer.main", str(finished.root)], capture_output=True,
                            text=True, timeout=300)
    assert direct.returncode == 2 and "already finished" in direct.stderr
    assert _fingerprint(finished.output) == outputs
    assert finished.events.read_bytes() == log  # no second history, and the run still reads as finished
    assert run_status(finished).state is RunState.FINISHED


def test_more_epochs_continues_from_the_final_state_and_keeps_every_earlier_file(finished: RunDir) -> None:
    before = _fingerprint(finished.output)
    comment = "# my note: keep this\n"
    finished.config.write_text(comment + finished.config.read_text())

    out = _train(finished, "--more-epochs", "1")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Continuing fin from step 8 to step 12" in out.stdout

    events = _events(finished)
    started = [e for e in events if e["type"] == "started"]
    assert [s["resumed_from"] for s in started] == [None, 8] and started[-1]["total_steps"] == 12
    steps = [e["step"] for e in events if e["type"] == "step"]
    assert steps == list(range(1, 13))  # one history: 1..8, then 9..12, no step twice
    assert run_status(finished).state is RunState.FINISHED and run_status(finished).step == 12

    after = _fingerprint(finished.output)
    # The first attempt's files keep their bytes; its final is kept under the step it holds.
    assert after["fin-step000004.safetensors"] == before["fin-step000004.safetensors"]
    assert after["fin-step000008-final.safetensors"] == before["fin.safetensors"]
    assert {"fin.safetensors", "fin-step000008-final.safetensors"} <= set(after)
    assert after["fin.safetensors"] != before["fin.safetensors"]  # the new final: four more steps of training
    assert finished.config.read_text().startswith(comment)  # the config's comment survived the new epochs
    assert "epochs = 3" in finished.config.read_text()


def test_as_new_starts_a_new_run_from_the_config_and_leaves_the_finished_one_alone(finished: RunDir) -> None:
    before, log = _fingerprint(finished.root), finished.events.read_bytes()
    out = _train(finished, "--as-new", "fin-2", "--set", "training.epochs=1")
    assert out.returncode == 0, out.stderr[-2000:]
    new = RunDir(finished.root.parent / "fin-2")
    assert run_status(new).state is RunState.FINISHED
    assert (new.output / "fin-2.safetensors").is_file()
    assert [e["step"] for e in _events(new) if e["type"] == "step"] == [1, 2, 3, 4]
    assert _fingerprint(finished.root) == before and finished.events.read_bytes() == log

    taken = _train(finished, "--as-new", "fin-2")
    assert taken.returncode == 2 and "already exists" in taken.stderr and "fin-3" in taken.stderr
    bad = _train(finished, "--as-new", "../x")
    assert bad.returncode == 2 and "not a run name" in bad.stderr


def test_continuing_without_a_final_backup_is_refused(tiny_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run = _new_run("nob", tiny_model("sd15"), make_dataset(tmp_path / "data"), "saving.backup_at_end=false",
                   "training.epochs=1")
    assert train(run) == 0
    out = _train(run, "--more-epochs", "1")
    assert out.returncode == 2
    assert "cannot continue from step 4: it has no backup" in out.stderr and "--as-new nob-2" in out.stderr
    assert [e["step"] for e in _events(run) if e["type"] == "step"] == [1, 2, 3, 4]


def test_a_resume_that_trains_a_saved_step_again_keeps_the_earlier_save(tiny_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # Saves every step, backups every 4: killed after step 5's save, it resumes from step 4 and saves 5 again.
    # Killed and resumed in-process (resume.crash_mid_run); the SIGKILLed process itself: test_train_e2e.
    run = _new_run("crash", tiny_model("sd15"), make_dataset(tmp_path / "data", count=16),
                   "saving.every_epochs=0", "saving.every_steps=1", "saving.backup_every_steps=4",
                   "training.epochs=2")
    crash_mid_run(run, (5, 5), event="saved")
    first = _fingerprint(run.output)
    resaved = sorted(n for n in first if int(n.removeprefix("crash-step")[:6]) > 4)
    assert resaved, first

    assert train(run) == 0, _events(run)[-1]
    after = _fingerprint(run.output)
    for name, digest in first.items():
        assert after.get(name) == digest, f"{name} was overwritten"
    assert {n.replace(".safetensors", "-2.safetensors") for n in resaved} <= set(after), sorted(after)
    warnings = [e["message"] for e in _events(run) if e["type"] == "warning"]
    assert any("crash-step000005.safetensors is from an earlier attempt and stays" in w for w in warnings)


def test_training_a_config_file_gives_its_run_the_file_with_its_comments(tiny_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = make_dataset(tmp_path / "data", count=4)
    job = tmp_path / "job.toml"
    job.write_text(
        "# my cat LoRA, second try\n[model]\nfamily = \"sd15\"\nbase = \"" + str(tiny_model("sd15")) + "\"\n\n"
        "[data]\nresolution = 64  # small on purpose\n\n[[data.concepts]]\npath = \"data\"\n\n"
        "[training]\nepochs = 1\nbatch_size = 2\n[sampling]\nevery_epochs = 0\n"
    )
    out = train_cli(str(job), cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    run = RunDir(Path(os.environ["TUITRAIN_WORKSPACE"]) / "job")
    text = run.config.read_text()
    assert "# my cat LoRA, second try\n" in text and "resolution = 64  # small on purpose" in text
    assert f'path = "{data.resolve()}"' in text  # relative paths made absolute, in place


def test_keep_last_never_prunes_an_earlier_attempts_final(finished: RunDir) -> None:
    out = _train(finished, "--more-epochs", "2", "--set", "saving.keep_last=1")
    assert out.returncode == 0, out.stderr[-2000:]
    names = set(_fingerprint(finished.output))
    # step 4 is an old intermediate save (pruned, as keep_last asks); the step-8 final stays.
    assert names == {"fin-step000008-final.safetensors", "fin-step000012.safetensors", "fin.safetensors"}, names
