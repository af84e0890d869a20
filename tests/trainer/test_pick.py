"""`tuitrain pick RUN STEP|best|last` (issue 21): one save becomes output/<name>.safetensors, and no file is lost.

A finished tiny sd15 LoRA run with a held-out concept (saves at steps 2 and 4, final at 6, each with
its eval loss) is picked from again and again through the real command; after every pick each file
that was in output/ before is still there, byte for byte, under some name.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.trainer.conftest import make_dataset, session_env
from tests.trainer.harness import config_table, copy_run, events, train
from tuitrain.config import parse_config
from tuitrain.config.io import dump_config
from tuitrain.runs import RunDir


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory, tiny_model) -> RunDir:
    """A finished run with saves at steps 2, 4 and its final at 6, each scored (module-wide: copy it)."""
    root = tmp_path_factory.mktemp("picked")
    with session_env(root):
        train_dir = make_dataset(root / "train", count=6)
        valid_dir = make_dataset(root / "valid", count=2, colour=(40, 200, 60))
        table = config_table(tiny_model("sd15"), train_dir, None,
                             data={"resolution": 64, "concepts": [{"path": str(train_dir)},
                                                                  {"path": str(valid_dir), "role": "validation"}]},
                             training={"epochs": 2, "batch_size": 2, "learning_rate": 1e-3, "seed": 3},
                             saving={"every_epochs": 0, "every_steps": 2},
                             evaluation={"draws": 2, "train_images": 2})
        run = RunDir(root / "runs" / "r")
        run.create_folders()
        run.config.write_text(dump_config(parse_config(table)))
        assert train(run) == 0
    return run


def _contents(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder` by its path inside it."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.endswith(".pick.json")}


def _nothing_lost(before: dict[str, str], after: dict[str, str]) -> None:
    missing = set(before.values()) - set(after.values())
    assert not missing, (before, after)


def test_pick_copies_the_save_and_keeps_the_final(finished_run: RunDir, workspace: Path) -> None:
    run = copy_run(finished_run, workspace)
    out = run.output
    final_bytes = (out / "r.safetensors").read_bytes()
    step2 = (out / "r-step000002.safetensors").read_bytes()
    assert final_bytes != step2
    before = _contents(out)

    picked = run_cli("pick", "r", "2")
    assert picked.returncode == 0, picked.stderr
    assert (out / "r.safetensors").read_bytes() == step2
    assert (out / "r-step000002.safetensors").read_bytes() == step2  # the save itself stays
    assert (out / "r-step000006-final.safetensors").read_bytes() == final_bytes  # the final, under its step
    assert "kept r.safetensors as r-step000006-final.safetensors" in picked.stdout
    assert "picked step 2" in picked.stdout
    _nothing_lost(before, _contents(out))
    assert "picked: step 2" in run_cli("runs").stdout

    # Picking again replaces only the earlier pick (a copy): the final is not renamed twice.
    scored = {e["step"]: e["eval_loss"] for e in events(run, "saved")}
    best = min(scored, key=lambda s: scored[s])
    before = _contents(out)
    again = run_cli("pick", "r", "best")
    assert again.returncode == 0, again.stderr
    assert f"picked step {best}" in again.stdout
    expected = out / ("r-step000006-final.safetensors" if best == 6 else f"r-step{best:06d}.safetensors")
    assert (out / "r.safetensors").read_bytes() == expected.read_bytes()
    assert not list(out.glob("r-step000006-final-2*"))
    _nothing_lost(before, _contents(out))
    assert f"picked: step {best}" in run_cli("runs").stdout

    # Back to the final: its bytes under the name again, and every file still there.
    before = _contents(out)
    last = run_cli("pick", "r", "last")
    assert last.returncode == 0, last.stderr
    assert (out / "r.safetensors").read_bytes() == final_bytes
    _nothing_lost(before, _contents(out))


def test_pick_of_a_step_never_saved_is_one_line(finished_run: RunDir, workspace: Path) -> None:
    run = copy_run(finished_run, workspace)
    before = _contents(run.output)
    out = run_cli("pick", "r", "3")
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "Traceback" not in out.stderr
    assert "no save of step 3" in out.stderr and "2, 4, 6" in out.stderr
    assert _contents(run.output) == before
    bad = run_cli("pick", "r", "soon")
    assert bad.returncode == 2 and "'best' or 'last'" in bad.stderr


def test_a_picked_run_trained_further_keeps_the_pick_under_its_step(finished_run: RunDir, workspace: Path) -> None:
    """--more-steps renames what holds the run's name before its new final takes it: a pick is named for
    the step it copies (-stepNNNNNN-picked), not taken for the old final, which the pick had already kept."""
    from tests.trainer.harness import train_cli

    run = copy_run(finished_run, workspace)
    out = run.output
    final = (out / "r.safetensors").read_bytes()
    step2 = (out / "r-step000002.safetensors").read_bytes()
    assert run_cli("pick", "r", "2").returncode == 0
    before = _contents(out)
    more = train_cli(run, "--more-steps", "2")
    assert more.returncode == 0, more.stderr[-2000:]
    assert (out / "r-step000002-picked.safetensors").read_bytes() == step2
    assert json.loads((out / "r-step000002-picked.pick.json").read_text())["step"] == 2
    assert (out / "r-step000006-final.safetensors").read_bytes() == final
    assert (out / "r.safetensors").read_bytes() not in (final, step2)  # the new final, step 8
    _nothing_lost(before, _contents(out))
    assert "picked" not in run_cli("runs").stdout  # the name holds the new final, not a pick


def test_keep_last_never_prunes_a_pick(finished_run: RunDir, workspace: Path) -> None:
    """saving.keep_last deletes older intermediate saves for good; a pick the user made is not one of them."""
    from tests.trainer.harness import train_cli

    run = copy_run(finished_run, workspace)
    out = run.output
    step2 = (out / "r-step000002.safetensors").read_bytes()
    assert run_cli("pick", "r", "2").returncode == 0
    more = train_cli(run, "--more-steps", "4", "--set", "saving.keep_last=1")
    assert more.returncode == 0, more.stderr[-2000:]
    assert not (out / "r-step000002.safetensors").exists() and not (out / "r-step000004.safetensors").exists()
    assert (out / "r-step000008.safetensors").exists()  # the newest intermediate save, kept
    assert (out / "r-step000002-picked.safetensors").read_bytes() == step2
    assert (out / "r-step000006-final.safetensors").exists()
