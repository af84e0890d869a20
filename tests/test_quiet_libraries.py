"""Library warnings go to trainer.log only, and a trainer error is said once, on one line when it goes to a file
(issue 23: torchvision, "should be kept in float32", "cannot be saved" and the hub's retries filled the screen;
`error: ...` then `failed at step 0 ...`, both hard-wrapped at 80 columns in a log file)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tuitrain.runs.library_output import LIBRARY_TAG


def _fake_base(folder: Path) -> Path:
    """A diffusers folder that check accepts (its model_index.json) and the trainer fails to load."""
    model = folder / "model"
    model.mkdir()
    (model / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline"}')
    return model


def _images(folder: Path) -> Path:
    from PIL import Image

    folder.mkdir()
    for i in range(2):
        Image.new("RGB", (512, 512), (60 * i, 90, 200)).save(folder / f"{i}.png")
        (folder / f"{i}.txt").write_text("a blue square")
    return folder


def test_foreground_train_says_its_error_once_and_whole_and_keeps_library_output_in_the_log(
    cli, workspace: Path, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    made = cli("new", "fail", "--preset", "sd15-lora", "--data", str(_images(tmp_path / "data")),
               "--base", str(_fake_base(tmp_path)))
    assert made.returncode == 0, made.stderr
    out = cli("train", "fail")  # stdout and stderr are pipes here, as in `train RUN > log 2>&1`
    assert out.returncode == 1, out.stdout + out.stderr
    lines = (out.stdout + out.stderr).splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and "cannot load the diffusers folder" in errors[0], lines
    assert errors[0].rstrip().endswith("were passed.")  # the whole message on its one line: not wrapped
    assert lines == [errors[0], "failed at step 0"], lines  # nothing else: no library warning, no repeat
    log = (workspace / "fail" / "trainer.log").read_text()
    assert all(line.startswith(LIBRARY_TAG) for line in log.splitlines()), log


_EMIT = """
import logging, sys, warnings
from tuitrain.runs.library_output import library_output_to
with open(sys.argv[1], "w") as log, library_output_to(log):
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging
    diffusers_logging.get_logger("diffusers.models.modeling_utils").warning(
        "There are modules in UNet2DConditionModel that should be kept in float32: []")
    transformers_logging.get_logger("transformers.utils.import_utils").warning(
        "`CLIPImageProcessor` requires torchvision (not installed)")
    logging.getLogger("huggingface_hub.utils._http").warning("Retrying in 1s [Retry 1/5].")
    warnings.warn("self.tokenizer=None of type <class 'NoneType'> cannot be saved.", UserWarning)
logging.getLogger("diffusers.models.modeling_utils").warning("after the block: back on stderr")
"""


def test_library_warnings_go_to_the_stream_tagged_and_nowhere_else(tmp_path: Path) -> None:
    log = tmp_path / "trainer.log"
    out = subprocess.run([sys.executable, "-c", _EMIT, str(log)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stderr.strip().splitlines() == ["after the block: back on stderr"]  # only what came after
    text = log.read_text()
    for said in ("should be kept in float32", "requires torchvision", "Retrying in 1s", "cannot be saved"):
        assert said in text, text
    assert all(line.startswith(LIBRARY_TAG) for line in text.splitlines()), text
