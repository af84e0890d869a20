"""End to end: `tuitrain check` names the files it will not use, `tuitrain train` skips exactly those, says so once."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.dataset import badfiles as bad
from tests.dataset.bounded import GIB, run_bounded
from tests.trainer.conftest import make_dataset
from tests.trainer.harness import events as harness_events
from tests.trainer.harness import new_run

BAD = {
    "cut.bmp": lambda p: bad.truncated(p, "BMP"),
    "damaged.png": bad.corrupt_png_clean_end,
    "fake-end.gif": bad.gif_fake_trailer,
    "palette.bmp": bad.bmp_oversize_palette,
    "strip.png": lambda p: bad.strip_png(p, 1, 50_000),
    "zero.png": bad.wmf_zero_size,
    "pipe.png": bad.fifo,
    "ppm.png": lambda p: bad.write(p, bad.encoded("PPM")),
}


def test_check_names_and_train_skips_the_same_files(tiny_model, tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data", count=4)
    (data / "img0.txt").unlink()
    os.mkfifo(data / "img0.txt")  # a caption that would block a plain read forever
    for name, make in BAD.items():
        make(data / name)
    run = new_run("mixed", tiny_model("sd15"), data, "data.resolution=64", "training.batch_size=2", "training.epochs=1",
                  "lora.rank=4", "sampling.every_epochs=0", "saving.every_epochs=0")

    # `check` and `train` as the user runs them: what they print is the point.
    check = run_bounded(["-m", "tuitrain", "check", "mixed", "--json"], timeout=120, memory=2 * GIB)
    train = run_bounded(["-m", "tuitrain", "train", "mixed"], timeout=300, memory=6 * GIB)

    report = json.loads(check.stdout)
    assert check.returncode == 0 and report["can_train"], check.stdout[-3000:] + check.stderr[-3000:]
    assert sorted(Path(p["path"]).name for p in report["data"]["unreadable"]) == sorted(BAD)
    assert train.returncode == 0, train.stderr[-3000:]
    said = " ".join((train.stdout + train.stderr).split())  # however a console wraps it
    assert "Traceback" not in said
    assert said.count("skipping 8 files that `tuitrain check` reports as not usable") == 1, said[-3000:]
    events = harness_events(run)
    started = next(event for event in events if event["type"] == "started")
    assert started["images"] == 4
    skipped = [e for e in events if e["type"] == "warning" and "skipping 8 files" in e["message"]]
    assert len(skipped) == 1  # in the run's history too: the dashboard's log shows it
    assert events[-1]["type"] == "finished" and events[-1]["status"] == "completed"
