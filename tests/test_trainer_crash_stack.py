"""A trainer process killed by a crash in native code leaves its Python stack in trainer.log.

A rank of a two-process FSDP run died once with SIGSEGV inside torch's gloo collective, and the
log held only the launcher's "Signal 11": nothing said where the trainer was. The trainer
process turns on faulthandler, so the stack of every thread goes to its stderr (trainer.log).
"""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

CRASHING_TRAINER = """
import faulthandler
import tuitrain.trainer.main as trainer_main
from tuitrain.runs import trainer_process

def train_until_it_crashes(argv):
    faulthandler._sigsegv()  # what a segfault in native code does to the process

trainer_main.main = train_until_it_crashes
trainer_process.main(["RUN"])
"""


def test_a_segfault_in_the_trainer_writes_its_stack() -> None:
    done = subprocess.run([sys.executable, "-c", CRASHING_TRAINER], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode != 0
    assert "Fatal Python error: Segmentation fault" in done.stderr
    assert "train_until_it_crashes" in done.stderr  # the Python frame that was running
